"""Losses beyond torch's own, each an `nn.Module` that configs/loss/ names by `_target_`."""

import torch
from torch import Tensor, nn


class QuantileLoss(nn.Module):
    """The pinball loss, whose optimum predicts the `quantile` of the target given the features (0.5: the median,
    the same optimum as the mean absolute error; 0.9: a value nine rows in ten stay under).

    >>> QuantileLoss(0.9)(torch.tensor([[0.0]]), torch.tensor([[1.0]]))
    tensor(0.9000)
    """

    def __init__(self, quantile: float = 0.5) -> None:
        super().__init__()
        if not 0 < quantile < 1:
            raise ValueError(f"quantile={quantile!r} must lie between 0 and 1, e.g. 0.9")
        self.quantile = quantile

    def forward(self, prediction: Tensor, target: Tensor) -> Tensor:
        error = target - prediction
        return torch.maximum(self.quantile * error, (self.quantile - 1) * error).mean()
