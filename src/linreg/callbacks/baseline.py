"""What the callbacks that compare the model with least squares share: the run hands them its fit."""

from lightning.pytorch.callbacks import Callback

from linreg.least_squares import LeastSquares


class ComparesWithLeastSquares(Callback):
    """A callback that compares the model with the run's least-squares fit of the training split (in the normalized
    space the model trains in). fit() solves it once and hands it to every such callback before training; a
    callback without it (used outside fit()) compares with nothing."""

    least_squares: LeastSquares | None = None
