"""Classes named by plain settings (`{"_target_": "torch.nn.Linear", ...}`): how a model builds its net, loss and
metrics, and which of them a checkpoint may name.

A model's settings are saved in its checkpoints as such plain values, and rebuilt from them by eval.py, predict.py
and export.py. A checkpoint is untrusted, so every class it names must be one of this template's (BUILT_IN) or one
the user lists in `trusted_classes` (configs/trusted_classes.yaml); nothing else is imported.
"""

import importlib
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from linreg.errors import ConfigError

BUILT_IN = frozenset(
    {
        # models and nets
        "linreg.model.Regressor",
        "linreg.nets.MLP",
        "torch.nn.Linear",
        # losses
        "torch.nn.MSELoss",
        "torch.nn.L1Loss",
        "torch.nn.HuberLoss",
        "torch.nn.SmoothL1Loss",
        "linreg.losses.QuantileLoss",
        # metrics
        "linreg.model.R2",
        *(
            f"torchmetrics.{name}"
            for name in (
                "MeanSquaredError",
                "MeanAbsoluteError",
                "MeanAbsolutePercentageError",
                "SymmetricMeanAbsolutePercentageError",
                "WeightedMeanAbsolutePercentageError",
                "MeanSquaredLogError",
                "R2Score",
                "ExplainedVariance",
                "PearsonCorrCoef",
                "SpearmanCorrCoef",
            )
        ),
    }
)


def locate(target: str) -> type:
    """The class a dotted name names (`torch.nn.Linear`), importing its module."""
    module_name, _, name = target.rpartition(".")
    try:
        found = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError, ValueError) as error:
        raise ConfigError(
            f"{target} names no class that can be imported ({type(error).__name__}: {error}); check the name, and "
            "that its package is installed."
        ) from None
    if not isinstance(found, type):
        raise ConfigError(f"{target} is not a class; name a class (e.g. torch.nn.Linear).")
    return found


def construct(settings: Mapping[str, Any], key: str, **given: Any) -> Any:
    """The class `settings["_target_"]` names, built with the other settings and `given` (what the model knows:
    `in_features`, ...). Not recursive: a nested `_target_` stays a plain value. `key` names the settings in
    errors (model.net, loss, metrics.mae)."""
    if not isinstance(settings, Mapping) or not isinstance(settings.get("_target_"), str):
        raise ConfigError(
            f"{key}={settings!r} is not the settings of a class: give a node with _target_ (e.g. "
            f"{key}._target_=torch.nn.Linear), as in configs/."
        )
    arguments = {name: value for name, value in settings.items() if name != "_target_"}
    target = settings["_target_"]
    found = locate(target)
    try:
        return found(**arguments, **given)
    except (TypeError, ValueError) as error:
        reason = (str(error).splitlines() or [type(error).__name__])[0].rstrip(".")
        raise ConfigError(
            f"{key} ({target}) refused its settings: {reason}. Correct or remove that setting "
            "(add --cfg job to the command to see the settings it was given)."
        ) from None


def named_classes(value: Any) -> Iterator[str]:
    """Every `_target_` anywhere in a tree of plain values (a checkpoint's settings, a config)."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            if key == "_target_":
                yield str(item)
            else:
                yield from named_classes(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from named_classes(item)


def untrusted(names: Iterable[str], trusted: Iterable[str]) -> list[str]:
    """The names that are neither this template's classes nor in `trusted`, each once."""
    allowed = BUILT_IN | set(trusted)
    return list(dict.fromkeys(name for name in names if name not in allowed))
