"""End training once it has reached the exact answer: every coefficient within `rtol` of least squares'."""

import lightning as L

from linreg.callbacks.baseline import ComparesWithLeastSquares
from linreg.config import is_number
from linreg.least_squares import LeastSquares


class ConvergenceStop(ComparesWithLeastSquares):
    """Stops training at the end of the first epoch whose coefficients are within `rtol` of least squares', like
    Lightning's EarlyStopping (the epoch is finished, counted and checkpointed as usual).

    The gap is exact and costs no pass over the rows (`LeastSquares.coefficient_gap`: the largest difference of a
    coefficient, in original units, as a fraction of its size or of its standard error if larger); it is kept for
    every epoch in `gaps`, which the end-of-run verdict reads to say what a run that missed should change, and the
    loggers get `train/coefficient_gap` and `train/converged` (1 once within `rtol`, else 0) at each epoch's end:
    the HParams tab's verdict column.
    A linear net (`model=linear`) with `loss=mse` only (for other nets and losses least squares is not the
    optimum: the stop does nothing, and the verdict says why), and not under `trainer.overfit_batches`.
    """

    def __init__(self, rtol: float = 1e-4, stop: bool = True) -> None:
        if not is_number(rtol) or not rtol > 0:
            raise ValueError(f"rtol={rtol!r} must be a number above 0, e.g. 1e-4")
        if not isinstance(stop, bool):
            raise ValueError(f"stop={stop!r} must be true or false")
        self.rtol, self.stop = rtol, stop
        self.optimum: LeastSquares | None = None  # the least-squares fit with the model's penalties
        self.gaps: list[float] = []

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.gaps = []
        # (Least squares of the training split is no aim for a loss other than MSE, or for a few batches.)
        aimed = pl_module.aims_at_least_squares and not trainer.overfit_batches
        self.optimum = pl_module.exact_optimum(self.least_squares) if aimed and self.least_squares else None

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.optimum is None:
            return
        self.gaps.append(pl_module.coefficient_gap(self.optimum))
        converged = self.gaps[-1] < self.rtol
        values = {"train/coefficient_gap": self.gaps[-1], "train/converged": float(converged)}
        for logger in trainer.loggers:  # (straight to the loggers, at the step of the epoch's values, as FitPath)
            logger.log_metrics(values, step=trainer.global_step - 1)
        if self.stop and converged:
            trainer.should_stop = True  # (every DDP rank has the same weights and equations, so the same gap)
