"""The run's own callbacks: one progress bar for the whole run, and a last.ckpt that is really the last."""

import time
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import Checkpoint, ProgressBar
from tqdm.auto import tqdm


class RunProgressBar(ProgressBar):
    """Counts the steps of the whole run on one line and shows the latest metrics.

    Tabular runs have many short epochs; Lightning's bar per epoch (plus one per validation)
    scrolls thousands of lines. Metrics are read between epochs, at most twice a second.
    """

    def __init__(self) -> None:
        super().__init__()
        self.enabled = True
        self.bar: tqdm | None = None
        self.next_metrics_update = 0.0

    def disable(self) -> None:
        self.enabled = False

    def enable(self) -> None:
        self.enabled = True

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not (self.enabled and trainer.is_global_zero):
            return
        steps_per_epoch = optimizer_steps(trainer)
        total = trainer.max_epochs * steps_per_epoch if trainer.max_epochs and trainer.max_epochs > 0 else None
        if trainer.max_steps > 0:
            total = min(total or trainer.max_steps, trainer.max_steps)
        self.bar = tqdm(total=total, initial=trainer.global_step, unit="step", dynamic_ncols=True, leave=True)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.bar is None:
            return
        self.bar.set_description(f"Epoch {trainer.current_epoch + 1}/{trainer.max_epochs}", refresh=False)
        # The previous epoch's metrics, read at most twice a second: reading them waits for the device.
        if time.monotonic() >= self.next_metrics_update:
            self.bar.set_postfix(self.get_metrics(trainer, pl_module), refresh=False)
            self.next_metrics_update = time.monotonic() + 0.5

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx: int
    ) -> None:
        if self.bar is not None:  # each call takes several optimizer steps
            self.bar.update(trainer.global_step - self.bar.n)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.bar is not None:
            self.bar.set_postfix(self.get_metrics(trainer, pl_module))
            self.close()

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        self.close()  # before the error is printed, not after it

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def get_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict:
        return {name: f"{value:.4g}" for name, value in trainer.progress_bar_metrics.items()}


def optimizer_steps(trainer: L.Trainer) -> int:
    """Optimizer steps per epoch: Lightning counts calls of training_step, which each take a list of batches."""
    sampler = getattr(trainer.train_dataloader, "sampler", None)
    if hasattr(sampler, "batches_in"):
        return sampler.batches_in(trainer.num_training_batches)
    return trainer.num_training_batches


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
