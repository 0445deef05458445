"""A `Table` of float32 tensors: a file encoded as a plan says (columns.py), or generated rows.

Training reads float32. A small table (up to PRECISE_CELLS values) also keeps its columns in float64 as the file
wrote them, and its passes for sums read those: the statistics then carry the data's own digits.
"""

import hashlib
import itertools
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
    splitting copies no data: a table of 10 million rows stays in memory once. A large table read from a file
    is laid out split by split (`file_rows` says where each row was in the file): its splits' `rows` are then
    ranges, and a batch of a whole split is a view of the columns, not a copy.
    """

    all_features: Tensor
    all_targets: Tensor
    feature_names: list[str]
    target_names: list[str]
    rows: Tensor | slice | None = None
    as_written: tuple[Tensor, Tensor] | None = None  # the columns in float64 as the file holds them (small tables)
    file_rows: Tensor | None = None  # the file's row of each row of the columns (None: the same row)

    @property
    def features(self) -> Tensor:
        """This table's feature rows (a copy when it is a split by positions, a view when by a range)."""
        return self.all_features if self.rows is None else self.all_features[self.rows]

    @property
    def targets(self) -> Tensor:
        return self.all_targets if self.rows is None else self.all_targets[self.rows]

    def rows_at(self, within: Tensor | slice) -> Tensor | slice:
        """The rows of the columns at positions (or a range of them) `within` this table."""
        if self.rows is None:
            return within
        if isinstance(self.rows, Tensor):
            return self.rows[within]
        start = self.rows.indices(len(self.all_features))[0]
        if isinstance(within, slice):
            first, stop, step = within.indices(len(self))
            return slice(start + first, start + stop, step)
        return within + start

    def select(self, positions: Tensor | slice) -> "Table":
        """The table of the rows at `positions` of this one."""
        return replace(self, rows=self.rows_at(positions))

    def laid_out(self, order: Tensor) -> "Table":
        """A copy of this table's columns with their rows in `order` (positions), which `file_rows` keeps."""
        file_rows = order if self.file_rows is None else self.file_rows[order]
        order = order.to(self.all_features.device)
        features, targets = self.all_features[order], self.all_targets[order]
        return Table(features, targets, self.feature_names, self.target_names, file_rows=file_rows)

    def ranges(self, lengths: list[int]) -> list["Table"]:
        """Consecutive ranges of this table's rows, of `lengths` rows each (the splits of a laid-out table)."""
        ends = np.cumsum([0, *lengths]).tolist()
        return [self.select(slice(start, end)) for start, end in itertools.pairwise(ends)]

    def on(self, features: Tensor, targets: Tensor) -> "Table":
        """The same rows of `features` and `targets`: the whole table's columns after a move to another device."""
        rows = self.rows.to(features.device) if isinstance(self.rows, Tensor) else self.rows
        return replace(self, all_features=features, all_targets=targets, rows=rows)

    def __len__(self) -> int:
        if isinstance(self.rows, slice):
            return len(range(*self.rows.indices(len(self.all_features))))
        return len(self.all_features) if self.rows is None else len(self.rows)

    def row_numbers(self) -> Tensor:
        """This table's rows of the columns, as a tensor (also where they are all of them, or a range)."""
        if isinstance(self.rows, Tensor):
            return self.rows
        return torch.arange(len(self.all_features))[slice(None) if self.rows is None else self.rows]

    def file_positions(self) -> Tensor | None:
        """Where each of this table's rows was in the file, in the table's order (None: all rows, in that order)."""
        if self.file_rows is None:
            return None if self.rows is None else self.row_numbers()
        return self.file_rows if self.rows is None else self.file_rows[self.rows]

    def in_file_order(self) -> Tensor | None:
        """This table's rows of the columns in the order the file holds them (None: all rows, in that order).
        A laid-out table's rows are marked at their places in the file, then read off in its order: no sort."""
        if self.file_rows is None:
            return None if self.rows is None else self.row_numbers().sort().values
        taken = torch.zeros(len(self.file_rows), dtype=torch.bool)
        taken[self.file_positions().cpu()] = True
        return self.rows_of_file()[taken]

    def rows_of_file(self) -> Tensor:
        """The row of the columns that holds each row of the file (of a laid-out table): `file_rows` inverted,
        without a sort."""
        file_rows = self.file_rows.cpu()
        rows = torch.empty_like(file_rows)
        rows[file_rows] = torch.arange(len(file_rows))
        return rows

    def chunks(self, chunk_rows: int = CHUNK_ROWS, file_order: bool = False) -> Iterator[tuple[Tensor, Tensor]]:
        """The rows a piece at a time as float64 on the CPU: one pass for sums that must not copy a big table (the
        streamed splits of stream.py offer the same pass). In the file's order, except that a range of a
        laid-out table's columns is read in its own unless `file_order` asks (sums do not depend on the order;
        Durbin–Watson does)."""
        features, targets = self.as_written or (self.all_features, self.all_targets)
        if isinstance(self.rows, Tensor) or file_order:
            rows = self.in_file_order()
            pieces = row_chunks(len(self), None if rows is None else rows.to(features.device), chunk_rows)
        else:
            pieces = (self.rows_at(piece) for piece in row_chunks(len(self), None, chunk_rows))
        for index in pieces:
            yield features[index].double().cpu(), targets[index].double().cpu()

    def digest(self) -> str:
        """A fingerprint of every value of the table's columns, in the file's order, and of which rows it takes
        (their places in the file): any change to the file or to the split changes it."""
        digest = hashlib.blake2b(digest_size=8)
        in_file_order = replace(self, rows=None).in_file_order()
        for columns in (self.all_features, self.all_targets):
            if in_file_order is None:
                digest.update(columns.detach().cpu().contiguous().numpy())
                continue
            for index in row_chunks(len(columns), in_file_order.to(columns.device), CHUNK_ROWS * 16):
                digest.update(columns[index].detach().cpu().numpy())
        positions = self.file_positions()
        if positions is not None:
            digest.update(positions.detach().cpu().contiguous().numpy())
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
