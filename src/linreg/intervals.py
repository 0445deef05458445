"""What `predict.py interval=0.95` needs, kept in every checkpoint: the least-squares fit's uncertainty.

A leaf (torch and scipy only): the model holds it, and importing the model must not import the data code.
"""

import math
from typing import TYPE_CHECKING

import torch
from scipy import stats
from torch import Tensor, nn

if TYPE_CHECKING:  # (only named in an annotation: statistics.py builds on the data code, which this avoids)
    from linreg.statistics import Solution


class PredictionIntervals(nn.Module):
    """What `predict.py interval=0.95` needs, kept in every checkpoint as plain tensors: the least-squares
    fit's residual variance and the inverse scatter of its features, in original units (float64).

    The interval of a new row x is prediction ± t·σ·√(1 + 1/n + (x − x̄)ᵀ S⁺ (x − x̄)), statsmodels'
    `get_prediction().summary_frame()` obs_ci; centred on the model's own prediction.
    """

    def __init__(self, n_features: int, n_targets: int) -> None:
        super().__init__()
        self.register_buffer("feature_means", torch.zeros(n_features, dtype=torch.float64))
        self.register_buffer("inverse_scatter", torch.zeros(n_features, n_features, dtype=torch.float64))
        self.register_buffer("residual_variance", torch.zeros(n_targets, dtype=torch.float64))
        self.register_buffer("rows", torch.zeros((), dtype=torch.float64))
        self.register_buffer("df_resid", torch.zeros((), dtype=torch.float64))

    def fit(self, solution: "Solution") -> None:
        """A model through the origin keeps x̄ = 0, S its XᵀX, and rows = ∞: its leverage has no 1/n term."""
        self.feature_means.copy_(solution.sums.feature_means)
        self.inverse_scatter.copy_(solution.inverse_scatter)
        self.residual_variance.copy_(solution.residual_variance)
        self.rows.fill_(solution.sums.rows if solution.intercept else math.inf)
        self.df_resid.fill_(solution.df_resid)

    def half_width(self, features: Tensor, level: float) -> Tensor:
        """rows × targets: how far each bound lies from the prediction, in the targets' units."""
        shifted = features.double().cpu() - self.feature_means
        leverage = 1 / self.rows + ((shifted @ self.inverse_scatter) * shifted).sum(1)
        quantile = float(stats.t.ppf(0.5 + level / 2, float(self.df_resid)))
        return quantile * (self.residual_variance * (1 + leverage[:, None])).sqrt()
