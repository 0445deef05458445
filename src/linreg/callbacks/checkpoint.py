"""checkpoints/last.ckpt: the newest weights, written at epoch ends and when training ends."""

import time
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import Checkpoint


class LastCheckpoint(Checkpoint):
    """Writes `checkpoints/last.ckpt`, the newest weights, at epoch ends and when training ends.

    A save costs milliseconds, as much as several epochs of a small table, so within a run it
    happens at most every `interval_seconds` (0: every epoch); the end of training always saves.
    Lightning's `save_last` would not do: it follows the monitored saves, so its last.ckpt stops
    changing once the monitored metric stops improving.
    """

    def __init__(self, dirpath: str, interval_seconds: float = 10.0) -> None:
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

    def save(self, trainer: L.Trainer) -> None:
        trainer.save_checkpoint(self.path, weights_only=False)  # buffered, then written in one go
        self.saved_step = trainer.global_step
        self.best_model_path = str(self.path)
        self.next_save = time.monotonic() + self.interval_seconds
