"""Finding and safely loading the checkpoints that training wrote, for eval.py and predict.py.

A checkpoint is untrusted input: it is read with `weights_only=True` (plain tensors, numbers, strings,
lists and dicts; no pickled code runs), and only this package's own classes are built from its values.
"""

import inspect
import pickle
from pathlib import Path
from typing import Any

import torch

from linreg.data import DATA_MODULES, TabularDataModule
from linreg.errors import ConfigError
from linreg.model import LinearRegressor


def find_checkpoint(ckpt_path: str, log_dir: str = "logs") -> Path:
    """`last` (the newest last.ckpt under `log_dir`), a run directory, or a checkpoint file."""
    if ckpt_path == "last":
        candidates = sorted(Path(log_dir).glob("**/checkpoints/last.ckpt"), key=lambda p: p.stat().st_mtime)
        if not candidates:
            raise ConfigError(
                f"ckpt_path=last: no checkpoints/last.ckpt under {Path(log_dir).resolve()}. "
                "Train first (make train), or give ckpt_path=<run directory or .ckpt file>."
            )
        return candidates[-1]
    path = Path(ckpt_path).expanduser()
    if path.is_dir():
        path = path / "checkpoints" / "last.ckpt" if (path / "checkpoints").is_dir() else path / "last.ckpt"
    if not path.is_file():
        raise ConfigError(
            f"ckpt_path={ckpt_path}: no such checkpoint ({path.resolve()}). Give a .ckpt file, a run directory or last."
        )
    return path


def read_checkpoint(path: Path) -> dict[str, Any]:
    """The checkpoint's plain values, or a ConfigError for a file that is not a checkpoint of plain values."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError) as error:
        raise not_loadable(path, error) from None
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint or "hyper_parameters" not in checkpoint:
        raise not_loadable(path, ValueError("no state_dict and hyper_parameters"))
    return checkpoint


def not_loadable(path: Path, error: Exception) -> ConfigError:
    reason = (str(error).splitlines() or [""])[0]
    return ConfigError(
        f"{path} is not a checkpoint this template can load safely ({type(error).__name__}: {reason}). "
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
    except (TypeError, ValueError) as error:
        raise not_loadable(path, error) from None


def load_model(path: Path, checkpoint: dict[str, Any] | None = None) -> LinearRegressor:
    """The trained model, in evaluation mode on the CPU."""
    checkpoint = checkpoint or read_checkpoint(path)
    model = build_from(LinearRegressor, checkpoint["hyper_parameters"], path, "model")
    try:
        model.load_state_dict(checkpoint["state_dict"])
    except (RuntimeError, KeyError) as error:
        raise not_loadable(path, error) from None
    return model.eval()


def load_datamodule(path: Path, checkpoint: dict[str, Any]) -> TabularDataModule:
    """The data module the checkpoint was trained with, rebuilt from its saved settings (read and split)."""
    kind = next((name for name in DATA_MODULES if name in checkpoint), None)
    if kind is None:
        raise ConfigError(f"{path} does not record its data; give input=<CSV file> to evaluate on.")
    datamodule = build_from(DATA_MODULES[kind], checkpoint.get("datamodule_hyper_parameters"), path, "data")
    datamodule.setup("test")
    if datamodule.state_dict() != checkpoint[kind]:
        raise ConfigError(
            f"The data of {path} no longer splits as it did in training ({checkpoint[kind]}, now "
            f"{datamodule.state_dict()}): the file changed. Give input=<CSV file> to evaluate on."
        )
    return datamodule
