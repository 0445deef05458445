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

    The weights are checked at every epoch end, before `last.ckpt` is written, so the checkpoints keep
    the last finite weights. The step loss is read every `trainer.log_every_n_steps` steps (reading it
    waits for the device), and the loss of the step that broke the weights when they break.
    """

    def __init__(self) -> None:
        self.last_finite_loss = math.nan
        self.weights: list[torch.Tensor] = []
        self.latest_loss: torch.Tensor | None = None

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.weights = list(pl_module.parameters())  # listed once: walking the module's tree every epoch costs

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: STEP_OUTPUT, batch, batch_idx: int
    ) -> None:
        self.latest_loss = outputs["loss"]
        if logs_this_step(trainer):
            self.check(trainer, pl_module, f"step {trainer.global_step}")

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.check(trainer, pl_module, f"epoch {trainer.current_epoch + 1} (step {trainer.global_step})")

    def check(self, trainer: L.Trainer, pl_module: L.LightningModule, when: str) -> None:
        loss = math.nan if self.latest_loss is None else float(self.latest_loss)
        if math.isfinite(loss) and all(torch.isfinite(weight).all() for weight in self.weights):
            self.last_finite_loss = loss
            return
        lr = trainer.optimizers[0].param_groups[0]["lr"]
        raw_inputs = pl_module.data.normalize == "none"
        hint = " or normalize the inputs (data.normalize=standardize)" if raw_inputs else ""
        raise TrainingDiverged(
            f"Training diverged at {when}: the loss became {loss:g} "
            f"(last finite loss seen: {self.last_finite_loss:.6g}). "
            f"Lower the learning rate (optimizer.lr={lr:g}){hint}. "
            "The checkpoints keep the last finite weights."
        )
