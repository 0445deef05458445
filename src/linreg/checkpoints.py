"""Finding and loading the checkpoints that training wrote, for eval.py and predict.py."""

import pickle
from pathlib import Path

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


def load_model(path: Path) -> LinearRegressor:
    """The trained model, loaded without running any pickled code: a checkpoint is untrusted input."""
    try:
        model = LinearRegressor.load_from_checkpoint(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, KeyError, EOFError) as error:
        raise ConfigError(
            f"{path} is not a checkpoint this template can load safely ({type(error).__name__}: "
            f"{str(error).splitlines()[0]}). Use a last.ckpt or best.ckpt written by scripts/train.py."
        ) from None
    return model.eval()
