"""The exact answer linear regression has: least squares on the training split, to judge the optimizer by."""

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import Tensor

from linreg.data import Table
from linreg.normalize import CHUNK_ROWS, Normalizer, row_chunks, to_original_units


def normalized_chunks(
    table: Table, features: Normalizer, targets: Normalizer, chunk_rows: int
) -> Iterator[tuple[Tensor, Tensor]]:
    """The table's rows a piece at a time, normalized as the model sees them, in float64 on the CPU."""
    for index in row_chunks(len(table), table.rows, chunk_rows):
        yield features(table.all_features[index]).double().cpu(), targets(table.all_targets[index]).double().cpu()


@dataclass
class LeastSquares:
    """The least-squares fit in the normalized space the model trains in."""

    weight: Tensor  # targets × features
    bias: Tensor
    train_loss: float  # its MSE on the training split: the lowest train/loss that model.loss=mse can reach

    def loss_on(self, table: Table, features: Normalizer, targets: Normalizer, chunk_rows: int = CHUNK_ROWS) -> float:
        """Its MSE (normalized space) on another table, such as the validation split."""
        total = 0.0
        for x, y in normalized_chunks(table, features, targets, chunk_rows):
            total += float(((x @ self.weight.T + self.bias - y) ** 2).sum())
        return total / (len(table) * self.weight.shape[0])

    def equation(self, features: Normalizer, targets: Normalizer) -> tuple[Tensor, Tensor]:
        return to_original_units(self.weight, self.bias, features, targets)


def fit_least_squares(
    table: Table, features: Normalizer, targets: Normalizer, chunk_rows: int = CHUNK_ROWS
) -> LeastSquares:
    """Solve the normal equations, gathered in one pass over the rows in float64 (cheap for millions of rows).

    Rows are shifted by the first chunk's means before they are summed: the normal equations of raw
    columns far from zero (temperatures around 80, say) would lose digits to their squared condition.
    """
    n_features, n_targets = features.factor.numel(), targets.factor.numel()
    gram = torch.zeros(n_features + 1, n_features + 1, dtype=torch.float64)
    cross = torch.zeros(n_features + 1, n_targets, dtype=torch.float64)
    target_squares = torch.zeros(n_targets, dtype=torch.float64)
    shift_x = shift_y = None
    for x, y in normalized_chunks(table, features, targets, chunk_rows):
        if shift_x is None:
            shift_x, shift_y = x.mean(0), y.mean(0)
        design = torch.cat([x - shift_x, torch.ones(len(x), 1, dtype=torch.float64)], dim=1)
        y = y - shift_y
        gram += design.T @ design
        cross += design.T @ y
        target_squares += (y * y).sum(0)
    solution = torch.linalg.lstsq(gram, cross).solution  # also copes with duplicate or constant columns
    squared_error = target_squares - 2 * (solution * cross).sum(0) + (solution * (gram @ solution)).sum(0)
    train_loss = float(squared_error.sum()) / (len(table) * n_targets)
    weight = solution[:-1].T.contiguous()
    return LeastSquares(weight, solution[-1] + shift_y - weight @ shift_x, train_loss)
