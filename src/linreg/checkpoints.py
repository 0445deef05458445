"""Finding and safely loading the checkpoints that training wrote, for eval.py and predict.py.

A checkpoint is untrusted input: it is read with `weights_only=True` (plain tensors, numbers, strings,
lists and dicts; no pickled code runs), and the only classes built from its values are this package's own and
those the user lists in `trusted_classes` (see classes.py).
"""

import inspect
import json
import logging
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from linreg.classes import locate, named_classes, untrusted
from linreg.data import DATA_MODULES, TabularDataModule
from linreg.data.columns import numeric_plan, plan_fault
from linreg.errors import ConfigError
from linreg.model import Regressor
from linreg.sweeps import is_scored, ranked_jobs

log = logging.getLogger(__name__)


def last_checkpoints(log_dir: str) -> list[Path]:
    """Every checkpoints/last.ckpt under `log_dir`, the newest first, or an error when there is none."""
    candidates = sorted(Path(log_dir).glob("**/checkpoints/last.ckpt"), key=lambda p: p.stat().st_mtime, reverse=True)
    if not candidates:
        raise ConfigError(
            f"ckpt_path=last: no checkpoints/last.ckpt under {Path(log_dir).absolute()}. "
            "Train first (make train), or give ckpt_path=<run directory or .ckpt file>."
        )
    return candidates


def find_checkpoint(ckpt_path: str, log_dir: str = "logs") -> Path:
    """`last` (the newest last.ckpt under `log_dir`), `best` (see best_checkpoint), a run directory, or a
    checkpoint file. Says which it took for `last` and `best`."""
    if ckpt_path == "best":
        return best_checkpoint(log_dir)
    if ckpt_path == "last":
        path = last_checkpoints(log_dir)[0]
        sweep = sweep_of(path.parent.parent)
        if sweep:
            log.info(f"ckpt_path=last: {path}, the newest job of the sweep {sweep} (ckpt_path=best takes its best)")
        else:
            log.info(f"ckpt_path=last: {path}, the newest run's")
        return path
    path = Path(ckpt_path).expanduser()
    if path.is_dir():
        path = path / "checkpoints" / "last.ckpt" if (path / "checkpoints").is_dir() else path / "last.ckpt"
    if not path.is_file():
        raise ConfigError(
            f"ckpt_path={ckpt_path}: no such checkpoint ({path.absolute()}). Give a .ckpt file, a run directory "
            "or last."
        )
    return path


def sweep_of(run: Path) -> Path | None:
    """The sweep directory a run directory is a job of (Hydra writes multirun.yaml there), or None."""
    return run.parent if (run.parent / "multirun.yaml").is_file() else None


def best_checkpoint(log_dir: str) -> Path:
    """The best epoch's checkpoint (best.ckpt, by val/loss; last.ckpt without a validation split) of the newest
    run under `log_dir` or, when that run is a sweep's job, of the sweep's job with the lowest optimized metric."""
    run = last_checkpoints(log_dir)[0].parent.parent
    sweep, why = sweep_of(run), "the newest run"
    if sweep:
        scored = [(job, row) for job, row in ranked_jobs(sweep) if is_scored(row)]
        if not scored:
            raise ConfigError(
                f"ckpt_path=best: no job of the newest sweep ({sweep}) ended with a result (see its summary.csv); "
                "give ckpt_path=<run directory or .ckpt file>."
            )
        run, row = scored[0]
        metric = json.loads((run / "status.json").read_text())["optimized_metric"]
        why = f"the best of {len(scored)} jobs of the newest sweep ({sweep}) by {metric}, {row['objective']:.4g}"
    checkpoints = run / "checkpoints"
    path = checkpoints / "best.ckpt" if (checkpoints / "best.ckpt").is_file() else checkpoints / "last.ckpt"
    epoch = "at its best epoch by val/loss" if path.name == "best.ckpt" else "its last weights (no validation split)"
    log.info(f"ckpt_path=best: {path}: {why}, {epoch}")
    return path


def read_checkpoint(path: Path) -> dict[str, Any]:
    """The checkpoint's plain values, or a ConfigError for a file that is not a checkpoint of plain values."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # whatever a damaged or crafted file makes the reader raise, it is not loadable
        raise not_loadable(path, error) from None
    if not isinstance(checkpoint, dict) or not all(
        isinstance(checkpoint.get(key), dict) for key in ("state_dict", "hyper_parameters")
    ):
        raise not_loadable(path, ValueError("no state_dict and hyper_parameters"))
    return checkpoint


# What Lightning reads from a checkpoint to go on training: without these its resume fails with a KeyError.
TRAINING_STATE = ("pytorch-lightning_version", "epoch", "global_step", "loops", "optimizer_states")


def missing_training_state(checkpoint: dict[str, Any]) -> list[str]:
    return [key for key in TRAINING_STATE if key not in checkpoint]


def not_loadable(path: Path, error: Exception) -> ConfigError:
    reason = (str(error).splitlines() or [""])[0]
    if "weights_only" in reason:  # (torch's advice to load it with code execution allowed is not ours to give)
        reason = "not a PyTorch archive of plain values"
    why = f"{type(error).__name__}: {reason}" if reason else type(error).__name__
    return ConfigError(
        f"{path} is not a checkpoint this template can load safely ({why}). "
        "Use a last.ckpt or best.ckpt written by scripts/train.py."
    )


def build_from(cls: type, settings: Any, path: Path, what: str) -> Any:
    """`cls(**settings)` with only the arguments `cls` takes, each a plain value from the checkpoint."""
    if not isinstance(settings, dict):
        raise not_loadable(path, ValueError(f"no {what} settings"))
    accepted = inspect.signature(cls).parameters
    open_ended = any(p.kind is p.VAR_KEYWORD for p in accepted.values())
    arguments = {k: v for k, v in settings.items() if open_ended or k in accepted}
    try:
        return cls(**arguments)
    except (TypeError, ValueError, ConfigError) as error:
        raise not_loadable(path, error) from None


def trained_dtype(state: Any) -> torch.dtype:
    """The floating-point type the net's weights were saved in (float32 unless trained in another precision)."""
    weights = [value for key, value in state.items() if str(key).startswith("net.") and torch.is_tensor(value)]
    return next((value.dtype for value in weights if value.is_floating_point()), torch.float32)


def load_model(path: Path, checkpoint: dict[str, Any] | None = None, trusted: Sequence[str] = ()) -> Regressor:
    """The trained model, in evaluation mode on the CPU: its class and those of its net, loss and metrics each
    this template's or in `trusted`, else a ConfigError that names them."""
    checkpoint = checkpoint or read_checkpoint(path)
    model_class = checkpoint.get("model_class", "linreg.model.Regressor")  # (the model's on_save_checkpoint)
    if not isinstance(model_class, str):
        raise not_loadable(path, ValueError("model_class is not a class name"))
    try:
        refused = untrusted([model_class, *named_classes(checkpoint["hyper_parameters"])], trusted)
    except RecursionError:
        raise not_loadable(path, ValueError("settings nested too deep")) from None
    if refused:
        raise ConfigError(
            f"{path} names {', '.join(refused)}, which this template does not rebuild from a checkpoint: a "
            "checkpoint is untrusted data, and only this template's classes and those in trusted_classes are "
            "built from it. If the class is yours (your own net or model), add it to configs/trusted_classes.yaml "
            f"or give trusted_classes=[{', '.join(refused)}]."
        )
    cls = locate(model_class)
    if not issubclass(cls, Regressor):
        raise not_loadable(path, ValueError(f"{model_class} is not a linreg.model.Regressor"))
    model = build_from(cls, checkpoint["hyper_parameters"], path, "model")
    state = checkpoint["state_dict"]
    if isinstance(state, dict) and not any(str(key).startswith("intervals.") for key in state):
        # Written before checkpoints kept the least-squares covariance: no intervals (rows 0), the rest as it was.
        state = {**state, **{f"intervals.{key}": value for key, value in model.intervals.state_dict().items()}}
    try:
        if (dtype := trained_dtype(state)) != torch.float32:  # (trainer.precision=64-true: it predicts in float64)
            model.to(dtype)
        model.load_state_dict(state)
    except (RuntimeError, KeyError, TypeError) as error:
        raise not_loadable(path, error) from None
    fault = plan_fault(model.data.columns, model.data.feature_names) if model.data.columns is not None else None
    if fault:
        raise not_loadable(path, ValueError(fault))
    broken = [
        name for name, value in model.state_dict().items() if value.is_floating_point() and not value.isfinite().all()
    ]
    if broken:
        raise ConfigError(
            f"{path} holds values that are not finite numbers (NaN or inf) in {', '.join(broken[:3])}: the run that "
            "wrote it diverged or the file was changed. Use a checkpoint written before (best.ckpt, or an earlier "
            "run) or train again."
        )
    return model.eval()


def column_plan(model: Regressor) -> dict:
    """How raw file columns become the model's features (tables that were numbers already: as they are)."""
    return model.data.columns or numeric_plan(model.data.feature_names, model.data.target_names)


def load_datamodule(path: Path, checkpoint: dict[str, Any]) -> TabularDataModule:
    """The data module the checkpoint was trained with, rebuilt from its saved settings (read and split)."""
    kind = next((name for name in DATA_MODULES if name in checkpoint), None)
    if kind is None:
        raise ConfigError(f"{path} does not record its data; give input=<CSV file> to evaluate on.")
    datamodule = build_from(DATA_MODULES[kind], checkpoint.get("datamodule_hyper_parameters"), path, "data")
    datamodule.setup("test")
    changed = datamodule.columns is not None and datamodule.columns != saved_data(checkpoint).get("columns")
    saved, now = checkpoint[kind], datamodule.state_dict()
    if changed or not datamodule.has_rows_of(saved):
        raise ConfigError(
            f"The data of {path} is no longer what it was trained on ({saved}, now {now}): the file changed. "
            "Give input=<CSV file> to evaluate on."
        )
    return datamodule


def resumable_checkpoint(
    ckpt_path: str, datamodule: TabularDataModule, allow_changed_data: bool = False, log_dir: str = "logs"
) -> tuple[Path, dict[str, Any]]:
    """The checkpoint that train.py resumes from: plain values, the same columns and, unless
    `allow_changed_data`, the same rows and normalization. With it, the data module takes the checkpoint's
    normalization, so the weights go on in the space they were trained in.

    `last` is the newest last.ckpt under `log_dir` that fits this run, not merely the newest one.
    """
    if ckpt_path == "last":
        candidates = last_checkpoints(log_dir)
        for path in candidates:
            try:
                checkpoint = read_checkpoint(path)
            except ConfigError:  # not loadable: not one to resume from
                continue
            if missing_training_state(checkpoint):
                continue
            if other_columns(checkpoint, datamodule) is not None:
                continue
            changed = changes(checkpoint, datamodule)
            if allow_changed_data or not changed:
                log.info(f"ckpt_path=last: resuming from {path}")
                return go_on_with(path, checkpoint, datamodule, changed)
        raise ConfigError(
            f"ckpt_path=last: none of the {len(candidates)} last.ckpt under {Path(log_dir).absolute()} was trained on "
            f"these rows with this normalization (features {', '.join(datamodule.feature_names)}; targets "
            f"{', '.join(datamodule.target_names)}). Give ckpt_path=<run directory or .ckpt file> (with "
            "allow_changed_data=true to go on with other rows), or leave it out to start a new run."
        )
    path = find_checkpoint(ckpt_path, log_dir)
    checkpoint = read_checkpoint(path)
    missing = missing_training_state(checkpoint)
    if missing:
        raise ConfigError(
            f"ckpt_path={ckpt_path} holds weights but not the training state Lightning resumes from "
            f"({', '.join(missing)}): it was saved with weights only, or changed since. Resume from a run's "
            "last.ckpt, or leave ckpt_path out to start a new run."
        )
    reason = other_columns(checkpoint, datamodule)
    if reason is not None:
        raise ConfigError(
            f"ckpt_path={ckpt_path} cannot resume this run: {reason}. Resume with the data settings it was "
            "trained with, or leave ckpt_path out to start a new run."
        )
    changed = changes(checkpoint, datamodule)
    if changed and not allow_changed_data:
        raise ConfigError(
            f"ckpt_path={ckpt_path} was trained on other data: {'; '.join(changed)}. Resume with the data "
            "settings and file it was trained with; or set allow_changed_data=true to go on from its weights, "
            "normalization and optimizer state with these rows; or leave ckpt_path out to start a new run."
        )
    return go_on_with(path, checkpoint, datamodule, changed)


def saved_data(checkpoint: dict[str, Any]) -> dict[str, Any]:
    """The checkpoint's facts of its table (the model's `data` setting), or none."""
    data = checkpoint["hyper_parameters"].get("data")
    return data if isinstance(data, dict) else {}


def other_columns(checkpoint: dict[str, Any], datamodule: TabularDataModule) -> str | None:
    """Why a checkpoint's weights cannot be those of this data's model (other columns), or None."""
    saved = saved_data(checkpoint)
    for key, what, ours in (
        ("feature_names", "feature columns", datamodule.feature_names),
        ("target_names", "target columns", datamodule.target_names),
    ):
        if list(saved.get(key) or []) != list(ours):
            theirs = ", ".join(map(str, saved.get(key) or []))
            return f"its {what} are {theirs or 'not recorded'}, this run's are {', '.join(ours)}"
    return None


def changes(checkpoint: dict[str, Any], datamodule: TabularDataModule) -> list[str]:
    """How this run's rows and normalization differ from the checkpoint's: empty when it goes on unchanged."""
    found = []
    saved, now = checkpoint.get(type(datamodule).__qualname__), datamodule.state_dict()
    if not isinstance(saved, dict):
        kind = next((name for name in DATA_MODULES if name in checkpoint), "not recorded")
        found.append(f"it was trained on another kind of data ({kind})")
    elif not datamodule.has_rows_of(saved):
        sizes = ", ".join(
            f"{key.removesuffix('_rows')} {saved.get(key)} → {now[key]}"
            for key in now
            if key.endswith("_rows") and saved.get(key) != now[key]
        )
        found.append(f"its rows differ ({sizes or 'same counts, other values'})")
    for prefix, normalizer in datamodule.normalizers.items():
        for name, statistic in normalizer.state_dict().items():
            stored = checkpoint["state_dict"].get(f"{prefix}.{name}")
            same_shape = isinstance(stored, torch.Tensor) and stored.shape == statistic.shape
            if not same_shape or not torch.allclose(stored.cpu().float(), statistic.cpu(), rtol=1e-6):
                found.append(
                    f"it was normalized differently ({prefix}.{name} differs: data.normalize, data.scale, "
                    "data.normalize_targets or the training rows changed)"
                )
                return found
    return found


def go_on_with(
    path: Path, checkpoint: dict[str, Any], datamodule: TabularDataModule, changed: list[str]
) -> tuple[Path, dict[str, Any]]:
    """`path` and its checkpoint, with the data module normalizing as the checkpoint's model did (said when that is
    a change)."""
    if changed:
        state = {key: value for key, value in checkpoint["state_dict"].items() if "normalizer." in str(key)}
        try:
            datamodule.adopt_normalization(state)
        except (RuntimeError, KeyError, TypeError) as error:  # statistics of another shape, or none
            raise not_loadable(path, error) from None
        log.warning(
            f"allow_changed_data=true: resuming {path} on other data ({'; '.join(changed)}); the run goes on with "
            "its normalization, weights and optimizer state."
        )
    return path, checkpoint


def check_same_training(checkpoint: dict[str, Any], model: Regressor) -> None:
    """Refuse, before Lightning restores them, a net, optimizer or schedule state that is another's: the weights
    would not load, torch would fail in the first step (L-BFGS's state lacks what SGD's has) or carry the wrong
    values on. Optimizers are told apart by the settings of their parameter groups, with those the schedule adds
    (`initial_lr`)."""
    theirs_net = checkpoint["hyper_parameters"].get("net")
    if theirs_net != model.hparams.net:
        raise ConfigError(
            f"The checkpoint's net is {theirs_net}, and this run's model.net is {dict(model.hparams.net)}; "
            "resume with the model= it was trained with, or leave ckpt_path out to start a new run."
        )
    ours = model.make_optimizer([torch.zeros(1, requires_grad=True)])
    if model.scheduler_config is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # (a stand-in's schedule, never stepped)
            model.make_schedule(ours, total_steps=lambda: 10)
    saved_schedules = checkpoint.get("lr_schedulers")
    schedules = len(saved_schedules) if isinstance(saved_schedules, list) else 0
    if schedules != (model.scheduler_config is not None):
        raise ConfigError(
            f"The checkpoint was trained {'with' if schedules else 'without'} a learning-rate schedule and this "
            f"run has {'none' if schedules else 'one'}; resume with the scheduler= it was trained with, or leave "
            "ckpt_path out to start a new run."
        )
    states = checkpoint.get("optimizer_states")
    try:
        theirs = set(states[0]["param_groups"][0]) - {"params"}
    except (TypeError, KeyError, IndexError):
        theirs = set()
    if states and theirs != set(ours.param_groups[0]) - {"params"}:
        raise ConfigError(
            f"The checkpoint was trained with another optimizer than this run's {type(ours).__name__} (its "
            f"settings: {', '.join(sorted(map(str, theirs))) or 'not recorded'}). Resume with the optimizer= "
            "it was trained with, or leave ckpt_path out to start a new run."
        )
