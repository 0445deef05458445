"""Column normalization fitted on the training split and stored with the model.

Keeping the statistics as buffers of a module puts them in every checkpoint, so a
checkpoint alone turns raw inputs into predictions in original units.
"""

import logging
from collections.abc import Iterator

import torch
from torch import Tensor, nn

from linreg.config import NORMALIZATIONS as METHODS
from linreg.errors import ConfigError

log = logging.getLogger(__name__)

# Rows per piece of a one-pass computation: 64k rows of float64 stay in the CPU cache (measured fastest).
CHUNK_ROWS = 1 << 16


class Normalizer(nn.Module):
    """Maps raw columns to `raw * factor + offset`, the scale the linear layer trains on."""

    def __init__(self, n_columns: int) -> None:
        super().__init__()
        self.register_buffer("factor", torch.ones(n_columns))
        self.register_buffer("offset", torch.zeros(n_columns))

    def fit(
        self,
        method: str,
        statistics: tuple[Tensor, Tensor, Tensor, Tensor],
        scale: float = 1.0,
        names: list[str] | None = None,
        centered: bool = True,
    ) -> None:
        """Set the map from the training split's `statistics`: each column's mean, standard deviation, lowest and
        highest value (least_squares.TrainingSums gathers them in its one pass over the rows). Not `centered`
        (a linear net without a bias: a line through the origin), the map only rescales, so that 0 stays 0."""
        if method not in METHODS:
            raise ConfigError(f"data.normalize={method!r} is not a normalization; choose one of {', '.join(METHODS)}.")
        n_columns = self.factor.numel()
        mean, std, low, high = statistics
        if method == "none":
            center, spread = torch.zeros(n_columns), torch.ones(n_columns)
        elif method == "scale":
            if scale == 0:
                raise ConfigError("data.scale=0 would erase every input; use a non-zero factor such as 0.1.")
            center, spread = torch.zeros(n_columns), torch.full((n_columns,), 1.0 / scale)
        else:
            center, spread = (mean, std) if method == "standardize" else (low, high - low)
        constant = (spread == 0) | ((high == low) & (method in ("standardize", "minmax")))
        if constant.any():
            columns = [names[i] if names else str(i) for i in constant.nonzero().flatten().tolist()]
            log.warning(  # (a log line, as the template's other warnings: one line, no source path)
                f"Column(s) {', '.join(columns)} are constant in the training split; data.normalize={method} "
                "leaves them unscaled instead of dividing by zero. Consider dropping them from data.features."
            )
            spread = torch.where(constant, torch.ones_like(spread), spread)
        if not centered:
            center = torch.zeros(n_columns)
        # One multiply-add per batch: scale=0.1 then computes exactly the book's 0.1 * t_u.
        factor = 1.0 / spread if method != "scale" else torch.full_like(spread, scale)
        self.factor.copy_(factor)
        self.offset.copy_(-center * factor)

    def forward(self, raw: Tensor) -> Tensor:
        return torch.addcmul(self.offset, raw, self.factor)

    def inverse(self, normalized: Tensor) -> Tensor:
        return (normalized - self.offset) / self.factor


def row_chunks(n_rows: int, rows: Tensor | None, chunk_rows: int) -> Iterator[slice | Tensor]:
    """Indices of `rows` (or of rows 0..n_rows-1) in pieces, for one pass over a table too big to copy."""
    for start in range(0, n_rows, chunk_rows):
        yield slice(start, start + chunk_rows) if rows is None else rows[start : start + chunk_rows]


def to_original_units(weight: Tensor, bias: Tensor, features: Normalizer, targets: Normalizer) -> tuple[Tensor, Tensor]:
    """The weights (targets × features) and biases of a linear map between normalized columns, for raw columns."""
    w, b = weight.detach().double().cpu(), bias.detach().double().cpu()
    fx, ox = features.factor.double().cpu(), features.offset.double().cpu()
    fy, oy = targets.factor.double().cpu(), targets.offset.double().cpu()
    # y = ((w·(x·fx + ox) + b) − oy) / fy
    return w * fx / fy[:, None], (w @ ox + b - oy) / fy
