"""The built-in networks a `Regressor` can hold (`model.net`); a user's own `nn.Module` plugs in the same way.

A net is any `nn.Module` whose constructor takes `in_features` and `out_features` (the model passes them, sized
from the table) and whose forward maps a batch of normalized features (rows × in_features) to normalized targets
(rows × out_features). `torch.nn.Linear` is one: the default, and the net the exact linear analysis applies to.
"""

from collections.abc import Sequence

from torch import Tensor, nn

ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "silu": nn.SiLU}


class MLP(nn.Module):
    """Fully connected layers with an activation (and dropout) between them, then a linear output layer.

    >>> import torch
    >>> MLP(3, 2, hidden=[16, 8])(torch.zeros(5, 3)).shape
    torch.Size([5, 2])
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        hidden: Sequence[int] = (64, 64),
        activation: str = "relu",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation={activation!r} is not one of {', '.join(ACTIVATIONS)}")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout={dropout!r} must be at least 0 and below 1")
        if any(not isinstance(size, int) or size < 1 for size in hidden):
            raise ValueError(f"hidden={list(hidden)!r} must list layer sizes of 1 or more, e.g. [64, 64]")
        layers: list[nn.Module] = []
        width = in_features
        for size in hidden:
            layers += [nn.Linear(width, size), ACTIVATIONS[activation]()]
            if dropout:
                layers.append(nn.Dropout(dropout))
            width = size
        layers.append(nn.Linear(width, out_features))
        self.layers = nn.Sequential(*layers)

    def forward(self, features: Tensor) -> Tensor:
        return self.layers(features)
