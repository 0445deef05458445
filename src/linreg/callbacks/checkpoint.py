"""checkpoints/last.ckpt, the newest weights, and checkpoints/best.ckpt, the best epoch of the whole run."""

import shutil
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.fabric.plugins import TorchCheckpointIO
from lightning.pytorch.callbacks import Checkpoint, ModelCheckpoint
from lightning.pytorch.utilities.exceptions import SIGTERMException

from linreg.config import is_number
from linreg.runtime import replaced_atomically


class LastCheckpoint(Checkpoint):
    """Writes `checkpoints/last.ckpt`, the newest weights, at epoch ends and when training ends.

    A save costs milliseconds, as much as several epochs of a small table, so within a run it
    happens at most every `interval_seconds` (0: every epoch); the end of training always saves.
    Lightning's `save_last` would not do: it follows the monitored saves, so its last.ckpt stops
    changing once the monitored metric stops improving.
    """

    def __init__(self, dirpath: str, interval_seconds: float = 10.0) -> None:
        if not is_number(interval_seconds) or interval_seconds < 0:
            raise ValueError(f"interval_seconds={interval_seconds!r} must be 0 (every epoch) or more seconds")
        self.path = Path(dirpath) / "last.ckpt"
        self.interval_seconds = interval_seconds
        self.next_save = 0.0
        self.saved_step = -1
        # Lightning's name for where a checkpoint callback saved: the summary (and ddp_spawn) use it.
        self.best_model_path = ""

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if time.monotonic() >= self.next_save and not trainer.fast_dev_run:
            self.save(trainer)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.saved_step != trainer.global_step and not trainer.fast_dev_run:
            self.save(trainer)

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        """Ctrl-C or SIGTERM (Lightning ends the fit with these): save where training got to, so it can go on."""
        interrupted = isinstance(exception, KeyboardInterrupt | SIGTERMException)
        if interrupted and self.saved_step != trainer.global_step and not trainer.fast_dev_run:
            self.save(trainer)

    def save(self, trainer: L.Trainer) -> None:
        trainer.save_checkpoint(self.path, weights_only=False)  # (written atomically: AtomicCheckpointIO)
        self.saved_step = trainer.global_step
        self.best_model_path = str(self.path)
        self.next_save = time.monotonic() + self.interval_seconds


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint writer, saving each checkpoint under a temporary name of its own beside it and
    renaming it over the old one. Lightning's own stages it in $TMPDIR (fsspec's transaction) and then moves it:
    a kill leaves the staged file there, and where $TMPDIR is another file system the move is a copy that a kill
    can leave half done. (Lightning calls it on the process that writes, rank 0, only.)"""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        if storage_options is not None:  # (as Lightning's own)
            raise TypeError(f"{type(self).__name__} takes no storage_options, got {storage_options!r}")
        with replaced_atomically(Path(path)) as temporary:  # (Lightning's would stage it in $TMPDIR: fsspec's)
            torch.save(checkpoint, temporary)


class BestCheckpoint(ModelCheckpoint):
    """Lightning's ModelCheckpoint, whose best stays the best of the whole run when a run is resumed.

    A resumed run writes into a directory of its own; Lightning's ModelCheckpoint then reloads only the old
    best's path and compares the resumed epochs among themselves (its warning says so), so `best.ckpt` would be
    the best since the resume. Here the old best checkpoint is copied into the new directory, and its score
    is the one the resumed epochs must beat. (With a `filename` that names metrics, Lightning's behaviour.)
    """

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        previous = Path(state_dict.get("best_model_path") or "")
        score = state_dict.get("best_model_score")
        moved = state_dict.get("dirpath", self.dirpath) != self.dirpath
        if not moved or "{" in self.filename or score is None or not previous.is_file():
            super().load_state_dict(state_dict)
            return
        best = Path(self.dirpath) / f"{self.filename}{self.FILE_EXTENSION}"
        with replaced_atomically(best) as temporary:
            shutil.copyfile(previous, temporary)
        self.best_model_score = self.kth_value = score
        self.best_model_path = self.kth_best_model_path = str(best)
        self.best_k_models = {str(best): score}
