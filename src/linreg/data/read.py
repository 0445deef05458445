"""A `Table` of float32 tensors: a file encoded as a plan says (columns.py), or generated rows.

Training reads float32. A small table (up to PRECISE_CELLS values) also keeps its columns in float64 as the file
wrote them, and its passes for sums read those: the statistics then carry the data's own digits.
"""

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

PRECISE_CELLS = 1 << 22  # tables of up to this many values keep a float64 copy (32 MiB) for the statistics
# Training's float32 copy is worth a warning where it changes a whole number, or moves a value by more than this
# fraction of its column's spread (a timestamp in seconds, say).
ROUNDING_WARNING = 1e-6


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
    as_written: tuple[Tensor, Tensor] | None = None  # the columns in float64 as the file holds them (small tables)

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
        features, targets = self.as_written or (self.all_features, self.all_targets)
        if rows is not None:
            rows = rows.to(features.device)
        for index in row_chunks(len(self), rows, chunk_rows):
            yield features[index].double().cpu(), targets[index].double().cpu()

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
        """At most `limit` of its rows, the same ones every time (for pictures); drawn without shuffling all the
        rows (NumPy's choice draws `limit` of them: a hundredth of a second, not a quarter, of 10 million)."""
        if len(self) <= limit:
            return self
        return self.select(torch.from_numpy(np.random.default_rng(0).choice(len(self), limit, replace=False)))


def warn_of_float32_rounding(table: Table, train_rows: np.ndarray | None, path: str) -> None:
    """Name the columns whose float32 copy, which training reads, loses digits of the training rows as written."""
    rows = slice(None) if train_rows is None else torch.as_tensor(train_rows)
    columns = (
        (table.feature_names, table.as_written[0], table.all_features),
        (table.target_names, table.as_written[1], table.all_targets),
    )
    rounded = []
    for names, written, copy in columns:
        written, error = written[rows], (copy[rows].double() - written[rows]).abs().amax(0)
        whole = (written == written.round()).all(0)
        loses = (whole & (error > 0)) | (error > ROUNDING_WARNING * written.std(0, correction=0))
        rounded += [
            f"{name} (by up to {e:.3g})"
            for name, e, lost in zip(names, error.tolist(), loses.tolist(), strict=True)
            if lost
        ]
    if rounded:
        log.warning(
            f"Training reads {path} in float32 (7 significant digits; whole numbers exact up to 2²⁴), which rounds "
            f"{', '.join(rounded)}. The least-squares statistics use the values as written, in float64; the trained "
            "equation can only come as close to them as float32 allows."
        )


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
