"""A `Table` of float32 tensors: a file encoded as a plan says (columns.py), or generated rows."""

import hashlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np
import pyarrow as pa
import torch
from torch import Tensor

from linreg.data.columns import encode, feature_names
from linreg.data.formats import TextFormat, read_table_file
from linreg.least_squares import NormalEquations
from linreg.normalize import CHUNK_ROWS, Normalizer, row_chunks

log = logging.getLogger(__name__)


@dataclass
class Table:
    """Feature and target columns as float32 tensors, with the names a person knows them by.

    A split of a table keeps the same tensors and lists its `rows` (None: all of them), so that
    splitting copies no data: a table of 10 million rows stays in memory once.
    """

    all_features: Tensor
    all_targets: Tensor
    feature_names: list[str]
    target_names: list[str]
    rows: Tensor | None = None

    @property
    def features(self) -> Tensor:
        """This table's feature rows (a copy when it is a split)."""
        return self.all_features if self.rows is None else self.all_features[self.rows]

    @property
    def targets(self) -> Tensor:
        return self.all_targets if self.rows is None else self.all_targets[self.rows]

    def select(self, positions: Tensor) -> "Table":
        """The table of the rows at `positions` of this one."""
        return replace(self, rows=positions if self.rows is None else self.rows[positions])

    def on(self, features: Tensor, targets: Tensor) -> "Table":
        """The same rows of `features` and `targets`: the whole table's columns after a move to another device."""
        rows = None if self.rows is None else self.rows.to(features.device)
        return replace(self, all_features=features, all_targets=targets, rows=rows)

    def __len__(self) -> int:
        return len(self.all_features) if self.rows is None else len(self.rows)

    def chunks(self, chunk_rows: int = CHUNK_ROWS) -> Iterator[tuple[Tensor, Tensor]]:
        """The rows a piece at a time, in file order, as float64 on the CPU: one pass for sums that must not
        copy a big table (the streamed splits of stream.py offer the same pass)."""
        rows = None if self.rows is None else self.rows.sort().values
        for index in row_chunks(len(self), rows, chunk_rows):
            yield self.all_features[index].double().cpu(), self.all_targets[index].double().cpu()

    def digest(self) -> str:
        """A fingerprint of every value of the table's columns and of which rows it takes: any change to the file
        or to the split changes it."""
        digest = hashlib.blake2b(digest_size=8)
        for values in (self.all_features, self.all_targets, self.rows):
            if values is not None:
                digest.update(values.detach().cpu().contiguous().numpy())
        return digest.hexdigest()

    def equations(
        self, features: Normalizer, targets: Normalizer, shifts: tuple[Tensor, Tensor] | None = None
    ) -> NormalEquations:
        """Its normal equations in the normalized space (one pass over its rows)."""
        return NormalEquations.of(self, features, targets, shifts)

    def sample(self, limit: int) -> "Table":
        """At most `limit` of its rows, the same ones every time (for pictures)."""
        if len(self) <= limit:
            return self
        return self.select(torch.randperm(len(self), generator=torch.Generator().manual_seed(0))[:limit])


def read_with_plan(plan: dict, path: str, setting: str, with_targets: bool, left_out: str) -> tuple[Table, pa.Table]:
    """A file encoded as a checkpoint's plan says (eval.py, predict.py), and the file's own cells as text.

    Rows that cannot be used (a blank target, or a blank feature the plan does not fill) are not in the
    table (its `rows` name the others); a warning counts them and says what becomes of them (`left_out`).
    """
    raw = read_table_file(path, TextFormat(**plan["text"]), as_text=True, setting=setting)
    encoded = encode(plan, raw, path, with_targets)
    usable = ~encoded.blank
    if with_targets:
        usable &= ~np.isnan(encoded.targets).any(axis=1)
    features, targets = (
        torch.from_numpy(encoded.features),
        torch.from_numpy(
            encoded.targets if with_targets else np.zeros((raw.num_rows, len(plan["targets"])), dtype=np.float32)
        ),
    )
    table = Table(features, targets, feature_names(plan), list(plan["targets"]))
    if not usable.all():
        log.warning(
            f"{(~usable).sum()} of {len(usable)} rows of {path} have blank cells that training did not fill "
            f"(data.impute); {left_out}."
        )
        table = table.select(torch.from_numpy(np.flatnonzero(usable)))
    return table, raw


def make_synthetic(
    n_samples: int, n_features: int, n_targets: int, noise: float, seed: int, correlation: float = 0.0
) -> tuple[Table, Tensor, Tensor]:
    """Rows y = x·Wᵀ + b + noise·ε with W, b, ε standard normal and x standard normal columns of pairwise
    `correlation` ρ (condition number √((1 + (features − 1)ρ) / (1 − ρ))); returns the table and the true (W, b)."""
    generator = torch.Generator().manual_seed(seed)
    weight = torch.randn(n_targets, n_features, generator=generator)
    bias = torch.randn(n_targets, generator=generator)
    features = torch.randn(n_samples, n_features, generator=generator)
    if correlation:  # a factor all columns share: ρ of each column's variance
        shared = torch.randn(n_samples, 1, generator=generator)
        features.mul_((1 - correlation) ** 0.5).add_(shared, alpha=correlation**0.5)
    targets = torch.addmm(bias, features, weight.T)
    targets.add_(torch.randn(n_samples, n_targets, generator=generator), alpha=noise)
    table = Table(features, targets, [f"x{i}" for i in range(n_features)], [f"y{i}" for i in range(n_targets)])
    return table, weight, bias
