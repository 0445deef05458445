"""A run writes only into a directory of its own: claimed before Hydra writes anything into it."""

import os
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from linreg import launchers
from linreg.errors import ConfigError, exit_explaining
from linreg.runtime import cannot_write

OWNER = ".linreg-run"  # the empty file by which a run claims its directory


class OwnRunDirectory(Callback):
    """Hydra callback (configs/hydra/default.yaml): before a single run starts, its `hydra.run.dir` must be new or
    empty, or be the run that `ckpt_path` resumes. Hydra would otherwise write its config files and log into a
    directory that holds a finished run or a user's files (`hydra.run.dir=.`), and two runs started together with
    one `hydra.run.dir` would mix their files: the first to claim it takes it, the other is refused. The processes
    of one torchrun/srun job share theirs (train.py refuses one that holds a finished run)."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        if launchers.launcher():
            return
        resumed = config.get("ckpt_path") if config.hydra.job.name == "train" else None  # (the others only read)
        directory = Path(config.hydra.run.dir)
        try:
            claim(directory, resumed)
        except ConfigError as error:  # (not into the log: that would be the other run's train.log)
            exit_explaining(error, into_log=False)
        except OSError as error:  # (a read-only folder: named by the setting that chose it)
            exit_explaining(cannot_write("hydra.run.dir", directory, error), into_log=False)


def claim(directory: Path, ckpt_path: str | None = None) -> None:
    """Make `directory` this run's, or a ConfigError that says whose it is; a directory that `ckpt_path` names
    (train.py resuming a run in its own directory) is taken as it is."""
    directory.mkdir(parents=True, exist_ok=True)
    if ckpt_path not in (None, "last", "best") and resumes(directory, Path(ckpt_path)):
        links = sorted(str(path.relative_to(directory)) for path in directory.rglob("*") if path.is_symlink())
        if links:  # (the log appends to its file: through a link, into a file elsewhere)
            raise ConfigError(
                f"hydra.run.dir={directory} holds symbolic links ({', '.join(links[:5])}); a run writes no file "
                "through a link. Remove them, or leave hydra.run.dir out to resume into a new directory."
            )
        return
    held = sorted(path.name for path in directory.iterdir() if path.name != OWNER)
    if held:
        shown = ", ".join(held[:5]) + (", …" if len(held) > 5 else "")
        raise ConfigError(
            f"hydra.run.dir={directory} holds files already ({shown}); a run writes only into a directory of its "
            "own, so that nothing there is replaced or mixed with this run's. Leave hydra.run.dir out (every run gets "
            "a directory of its own) or name a new or empty directory."
        )
    try:  # (two runs given one new directory: the first to create the claim takes it)
        os.close(os.open(directory / OWNER, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))  # (umask applies)
    except FileExistsError:
        raise ConfigError(
            f"hydra.run.dir={directory} is another run's directory (it was claimed by a run started before this "
            "one). Leave hydra.run.dir out (every run gets a directory of its own) or name a new directory."
        ) from None


def resumes(directory: Path, ckpt_path: Path) -> bool:
    """Whether `ckpt_path` is `directory` or a checkpoint inside it: a run resumed in its own directory."""
    directory, checkpoint = directory.resolve(), ckpt_path.resolve()
    return checkpoint == directory or directory in checkpoint.parents
