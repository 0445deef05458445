"""Stop at the first non-finite loss or weight, with a message that says when and what to change."""

import math

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities.types import STEP_OUTPUT

from linreg.errors import TrainingDiverged
from linreg.runtime import logs_this_step


class DivergenceStop(Callback):
    """Raises `TrainingDiverged` before a checkpoint can keep non-finite weights.

    The step loss is read every `trainer.log_every_n_steps` steps (reading it waits for the device) and
    the epoch's loss at every epoch end; `last.ckpt` is written after this check, so it keeps the last
    finite weights.
    """

    def __init__(self) -> None:
        self.last_finite_loss = math.nan

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: STEP_OUTPUT, batch, batch_idx: int
    ) -> None:
        if logs_this_step(trainer):
            self.check(float(outputs["loss"]), trainer, pl_module, f"step {trainer.global_step}")

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        loss = trainer.callback_metrics.get("train/loss")
        if loss is not None:
            when = f"epoch {trainer.current_epoch + 1} (step {trainer.global_step})"
            self.check(float(loss), trainer, pl_module, when)

    def check(self, loss: float, trainer: L.Trainer, pl_module: L.LightningModule, when: str) -> None:
        weights_finite = all(torch.isfinite(p).all() for p in pl_module.parameters())
        if math.isfinite(loss) and weights_finite:
            self.last_finite_loss = loss
            return
        lr = trainer.optimizers[0].param_groups[0]["lr"]
        raw_inputs = pl_module.hparams.get("normalize") == "none"
        hint = " or normalize the inputs (data.normalize=standardize)" if raw_inputs else ""
        raise TrainingDiverged(
            f"Training diverged at {when}: the loss became {loss:g} "
            f"(last finite loss seen: {self.last_finite_loss:.6g}). "
            f"Lower the learning rate (optimizer.lr={lr:g}){hint}. "
            "The checkpoints keep the last finite weights."
        )
