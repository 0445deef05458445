"""Everything a run does besides the regression itself, each a Lightning callback switched on in configs/callbacks/."""

from linreg.callbacks.baseline import ComparesWithLeastSquares
from linreg.callbacks.checkpoint import AtomicCheckpointIO, BestCheckpoint, LastCheckpoint
from linreg.callbacks.convergence import ConvergenceStop
from linreg.callbacks.divergence import DivergenceStop
from linreg.callbacks.fit_path import FitPath
from linreg.callbacks.lr_finder import LearningRateFinder
from linreg.callbacks.plots import RunPlots

__all__ = [
    "AtomicCheckpointIO",
    "BestCheckpoint",
    "ComparesWithLeastSquares",
    "ConvergenceStop",
    "DivergenceStop",
    "FitPath",
    "LastCheckpoint",
    "LearningRateFinder",
    "RunPlots",
]
