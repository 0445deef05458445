"""Where the optimizer is: its distance to the least-squares fit, and the weight and bias of a line."""

import lightning as L
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities.types import STEP_OUTPUT

from linreg.least_squares import LeastSquares, NormalEquations, fit_least_squares
from linreg.runtime import logs_this_step


class LeastSquaresGap(Callback):
    """Logs the least-squares loss of the training split, and how far above it the model's weights are.

    `train/gap_to_ols` is the MSE of the current weights on the whole training split minus the least-squares
    MSE (exact, from the split's normal equations: no pass over the rows), `val/gap_to_ols` the same on the
    validation split; both every `trainer.log_every_n_steps` steps, for `model.loss=mse`, whose optimum it is.
    """

    def __init__(self) -> None:
        self.least_squares: LeastSquares | None = None
        self.val_equations: NormalEquations | None = None
        self.baseline: dict[str, float] = {}

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        datamodule, normalizers = trainer.datamodule, (pl_module.feature_normalizer, pl_module.target_normalizer)
        self.least_squares = fit_least_squares(datamodule.train, *normalizers)
        self.baseline = {"baseline/ols_loss": self.least_squares.train_loss}
        if len(datamodule.val):
            shifts = self.least_squares.train_equations.shift_x, self.least_squares.train_equations.shift_y
            self.val_equations = NormalEquations.of(datamodule.val, *normalizers, shifts)
            self.baseline["baseline/ols_val_loss"] = self.val_equations.loss(
                self.least_squares.weight, self.least_squares.bias
            )
        for logger in trainer.loggers:  # constants: one point each
            logger.log_metrics(self.baseline, step=trainer.global_step)

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: STEP_OUTPUT, batch, batch_idx: int
    ) -> None:
        if pl_module.hparams.get("loss") != "mse" or not logs_this_step(trainer):
            return
        weight, bias = pl_module.linear.weight, pl_module.linear.bias
        gaps = {
            "train/gap_to_ols": self.least_squares.train_equations.loss(weight, bias) - self.least_squares.train_loss
        }
        if self.val_equations is not None:
            gaps["val/gap_to_ols"] = self.val_equations.loss(weight, bias) - self.baseline["baseline/ols_val_loss"]
        pl_module.log_dict(gaps, on_step=True, on_epoch=False)


class WeightPath(Callback):
    """For one feature and one target: the weight and bias in original units every `log_every_n_steps` steps."""

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: STEP_OUTPUT, batch, batch_idx: int
    ) -> None:
        if pl_module.linear.weight.numel() != 1 or not logs_this_step(trainer):
            return
        weight, bias = pl_module.equation()
        pl_module.log_dict({"model/weight": weight.item(), "model/bias": bias.item()}, on_step=True, on_epoch=False)
