"""Column normalization fitted on the training split and stored with the model.

Keeping the statistics as buffers of a module puts them in every checkpoint, so a
checkpoint alone turns raw inputs into predictions in original units.
"""

import warnings

import torch
from torch import Tensor, nn

from linreg.errors import ConfigError

METHODS = ("none", "scale", "standardize", "minmax")


class Normalizer(nn.Module):
    """Maps raw columns to `raw * factor + offset`, the scale the linear layer trains on."""

    def __init__(self, n_columns: int) -> None:
        super().__init__()
        self.register_buffer("factor", torch.ones(n_columns))
        self.register_buffer("offset", torch.zeros(n_columns))

    def fit(self, values: Tensor, method: str, scale: float = 1.0, names: list[str] | None = None) -> None:
        """Learn the statistics from `values` (rows × columns): call it with the training split only."""
        if method not in METHODS:
            raise ConfigError(f"data.normalize={method!r} is not a normalization; choose one of {', '.join(METHODS)}.")
        values = values.double()
        if method == "none":
            center, spread = torch.zeros(values.shape[1]), torch.ones(values.shape[1])
        elif method == "scale":
            if scale == 0:
                raise ConfigError("data.scale=0 would erase every input; use a non-zero factor such as 0.1.")
            center, spread = torch.zeros(values.shape[1]), torch.full((values.shape[1],), 1.0 / scale)
        elif method == "standardize":
            center, spread = values.mean(0), values.std(0, correction=0)
        else:
            center, spread = values.amin(0), values.amax(0) - values.amin(0)
        constant = spread == 0
        if constant.any():
            columns = [names[i] if names else str(i) for i in constant.nonzero().flatten().tolist()]
            warnings.warn(
                f"Column(s) {', '.join(columns)} are constant in the training split; data.normalize={method} "
                "leaves them unscaled instead of dividing by zero. Consider dropping them from data.features.",
                stacklevel=2,
            )
            spread = torch.where(constant, torch.ones_like(spread), spread)
        # One multiply-add per batch: scale=0.1 then computes exactly the book's 0.1 * t_u.
        factor = 1.0 / spread if method != "scale" else torch.full_like(spread, scale)
        self.factor.copy_(factor)
        self.offset.copy_(-center * factor)

    def forward(self, raw: Tensor) -> Tensor:
        return torch.addcmul(self.offset, raw, self.factor)

    def inverse(self, normalized: Tensor) -> Tensor:
        return (normalized - self.offset) / self.factor
