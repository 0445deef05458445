"""The run's own callbacks: one progress bar for the whole run, and a last.ckpt that is really the last."""

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint, ProgressBar
from tqdm.auto import tqdm


class RunProgressBar(ProgressBar):
    """Counts the steps of the whole run on one line and shows the latest metrics.

    Tabular runs have many short epochs; Lightning's bar per epoch (plus one per validation)
    scrolls thousands of lines. Metrics are read once per epoch, so a step never waits for them.
    """

    def __init__(self) -> None:
        super().__init__()
        self.enabled = True
        self.bar: tqdm | None = None

    def disable(self) -> None:
        self.enabled = False

    def enable(self) -> None:
        self.enabled = True

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not (self.enabled and trainer.is_global_zero):
            return
        steps_per_epoch = trainer.num_training_batches
        total = trainer.max_epochs * steps_per_epoch if trainer.max_epochs and trainer.max_epochs > 0 else None
        if trainer.max_steps > 0:
            total = min(total or trainer.max_steps, trainer.max_steps)
        self.bar = tqdm(total=total, initial=trainer.global_step, unit="step", dynamic_ncols=True, leave=True)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.bar is not None:
            self.bar.set_description(f"Epoch {trainer.current_epoch + 1}/{trainer.max_epochs}", refresh=False)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx: int) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.bar is not None:
            self.bar.set_postfix(self.get_metrics(trainer, pl_module), refresh=False)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def get_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict:
        return {name: f"{value:.4g}" for name, value in trainer.progress_bar_metrics.items()}


class LastCheckpoint(ModelCheckpoint):
    """Writes `last.ckpt`, the newest weights, every `every_n_epochs` epochs and when training ends.

    Lightning's own `save_last` only follows the monitored saves, so its last.ckpt stops changing
    once the monitored metric stops improving; resuming or predicting from it would lose epochs.
    """

    def __init__(self, dirpath: str, every_n_epochs: int = 1) -> None:
        super().__init__(
            dirpath=dirpath, filename="last", monitor=None, save_top_k=1, every_n_epochs=every_n_epochs,
            enable_version_counter=False,
        )

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self._should_skip_saving_checkpoint(trainer):
            self._save_topk_checkpoint(trainer, self._monitor_candidates(trainer))
