"""Where the optimizer is: its distance to the least-squares fit, and the coefficients it has reached."""

import lightning as L
from lightning.pytorch.utilities.types import STEP_OUTPUT

from linreg.callbacks.baseline import ComparesWithLeastSquares
from linreg.config import is_number
from linreg.least_squares import LeastSquares, NormalEquations, intercept_name
from linreg.runtime import logs_this_step


class FitPath(ComparesWithLeastSquares):
    """Where the optimizer is, every `trainer.log_every_n_steps` steps and at each epoch's end: its distance to
    least squares, and the coefficients in original units, named by feature: `weights/area m²`,
    `weights/city=Paris`, `weights/bias` (`weights/<target>/<feature>` with several targets), for models of up to
    `max_coefficients` weights. (`weights/` sorts after `train/` and `val/`: TensorBoard opens those groups first
    and shows those metrics first in its HParams table.)

    `train/gap_to_ols` is how far the MSE of the current weights on the whole training split is above the
    least-squares MSE, as a fraction of it (exact, from the split's normal equations: no pass over the rows);
    `val/gap_to_ols` the same on the validation split, against the least-squares fit's MSE there. For
    `loss=mse`, whose optimum least squares is. A net other than one linear layer gets neither (they would
    describe no layer of it).
    """

    def __init__(self, max_coefficients: int = 20) -> None:
        if not is_number(max_coefficients) or max_coefficients < 0:
            raise ValueError(f"max_coefficients={max_coefficients!r} must be 0 (no weights/ curves) or more")
        self.max_coefficients = max_coefficients  # more curves than this would bury the others in TensorBoard
        self.optimum: LeastSquares | None = None  # the least-squares fit with the model's penalties
        self.val_equations: NormalEquations | None = None
        self.written_step = -1  # the last optimizer step whose values went to the loggers

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.written_step = -1  # (a fit before this one, lr_find's say, counted its own steps)
        if pl_module.linear is None or self.least_squares is None:
            return
        datamodule, normalizers = trainer.datamodule, (pl_module.feature_normalizer, pl_module.target_normalizer)
        self.optimum = pl_module.exact_optimum(self.least_squares)
        if len(datamodule.val):  # (a streamed split's come from the pass that read it first: no new pass)
            self.val_equations = self.optimum.equations_of(datamodule.val, *normalizers)

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: STEP_OUTPUT, batch, batch_idx: int
    ) -> None:
        if logs_this_step(trainer):
            self.write(trainer, pl_module)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # And at the end of each epoch, so that a run of a few full-batch steps has a point per epoch too.
        self.write(trainer, pl_module)

    def write(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """The values of the optimizer step just taken, once, at the step Lightning writes that step's own values.

        Straight to the loggers, as Lightning's logger connector hands them its step metrics: every DDP rank holds
        the same weights (so rank 0 writes them, unsynchronized), and `self.log` would cost about a millisecond per
        value for Lightning's bookkeeping of values that nothing but the loggers reads (16 coefficients every 50
        steps of 1024 rows: a third of a step's time).
        """
        step = trainer.global_step
        if not (trainer.loggers and trainer.is_global_zero) or step == self.written_step:
            return
        values = self.values(pl_module)
        if values:
            for logger in trainer.loggers:
                logger.log_metrics(values, step=step - 1)
            self.written_step = step

    def values(self, pl_module: L.LightningModule) -> dict[str, float]:
        if pl_module.linear is None or self.optimum is None:  # (they describe a linear net's equation)
            return {}
        weight, bias = pl_module.linear_map()
        values = {}
        if pl_module.loss_is_mse:
            values["train/gap_to_ols"] = self.optimum.gap(weight, bias)
            if self.val_equations is not None:
                values["val/gap_to_ols"] = self.optimum.gap(weight, bias, self.val_equations)
        if weight.numel() <= self.max_coefficients:
            values |= coefficients(pl_module)
        return values


def coefficients(pl_module: L.LightningModule) -> dict[str, float]:
    """The fitted equation in original units, one value per feature and target, plus the biases."""
    weight, bias = pl_module.equation()
    features, targets = pl_module.data.feature_names, pl_module.data.target_names
    values = {}
    for target, row, intercept in zip(targets, weight.tolist(), bias.tolist(), strict=True):
        prefix = "weights/" if len(targets) == 1 else f"weights/{target}/"
        values |= {f"{prefix}{name}": value for name, value in zip(features, row, strict=True)}
        values[f"{prefix}{intercept_name(features)}"] = intercept
    return values
