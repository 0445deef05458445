"""Tables of numbers in, shuffled batches of tensors out.

The table becomes two tensors once; batches are gathered from them with one index
tensor per batch (a `TensorDataset` indexed by a batch sampler), which avoids the
per-row `__getitem__` and collate of the usual `DataLoader(batch_size=...)`.
Each item of a loader is a list of such batches, `batches_per_call` of them: the model
takes one optimizer step per batch, and Lightning's own cost per training_step call
(as much as a whole step on a small batch) is paid once per list.
"""

import itertools
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path

import lightning as L
import numpy as np
import pandas as pd
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Sampler, TensorDataset

from linreg.errors import ConfigError
from linreg.normalize import Normalizer

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


def resolve_path(path: str) -> Path:
    """Find a CSV file; `pkg://linreg/datasets/x.csv` names one shipped inside the package."""
    if path.startswith("pkg://"):
        package, _, name = path.removeprefix("pkg://").rpartition("/")
        return Path(str(resources.files(package.replace("/", ".")).joinpath(name)))
    return Path(path).expanduser()


def read_csv(path: str, targets: Sequence[str], features: Sequence[str] | None = None, dropna: bool = False) -> Table:
    """Read the named columns of a CSV file; features default to every column that is not a target."""
    frame = open_csv(path)
    targets = list(targets)
    features = [c for c in frame.columns if c not in targets] if features is None else list(features)
    both = [c for c in targets if c in features]
    if both:
        raise ConfigError(
            f"Column(s) {', '.join(both)} are in data.targets and in data.features; remove them from one of them."
        )
    if not features:
        raise ConfigError(f"{path} has no column left for features besides the targets {', '.join(targets)}; add one.")
    numbers = finite_rows(numeric_columns(frame, features + targets, path), path, dropna)
    return Table(float_tensor(numbers[features]), float_tensor(numbers[targets]), features, targets)


def open_csv(path: str, setting: str = "data.path") -> pd.DataFrame:
    """The CSV file that `setting` names, as a DataFrame with at least one row."""
    file = resolve_path(path)
    if file.is_dir():
        raise ConfigError(f"{setting}={path} is a directory; give the path of a CSV file in it.")
    if not file.is_file():
        raise ConfigError(f"{setting}={path}: no such file ({file.resolve()}). Give the path of a CSV file.")
    try:
        frame = pd.read_csv(file)
    except pd.errors.EmptyDataError:
        raise ConfigError(f"{setting}={path} is empty; a CSV file needs a header row and rows of numbers.") from None
    except (pd.errors.ParserError, UnicodeDecodeError, PermissionError) as error:
        reason = str(error).strip().splitlines()[0]
        raise ConfigError(f"{setting}={path} could not be read as a CSV file ({reason}).") from None
    if frame.empty:
        raise ConfigError(f"{setting}={path} has a header ({', '.join(map(str, frame.columns))}) but no rows.")
    return frame


def numeric_columns(frame: pd.DataFrame, columns: list[str], path: str) -> pd.DataFrame:
    """The named columns as numbers, or an error that names the missing or non-numeric column."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ConfigError(
            f"Column(s) {', '.join(missing)} are not in {path}; its columns are: {', '.join(map(str, frame.columns))}. "
            "Check data.targets and data.features (or the checkpoint's feature names)."
        )
    numbers = frame[columns].apply(pd.to_numeric, errors="coerce")
    for column in columns:
        text = numbers[column].isna() & frame[column].notna()
        if text.any():
            row = int(text.to_numpy().argmax())
            raise ConfigError(
                f"Column {column} of {path} is not numeric: line {row + 2} holds {frame[column].iloc[row]!r}. "
                "Convert it to numbers, or leave the column out of data.features."
            )
    return numbers


def finite_rows(numbers: pd.DataFrame, path: str, dropna: bool = False) -> pd.DataFrame:
    """The rows without empty, NaN or infinite cells: an error naming them, or (dropna) the others."""
    finite = np.isfinite(numbers.to_numpy(dtype="float64"))
    bad_rows = ~finite.all(axis=1)
    if not bad_rows.any():
        return numbers
    columns = ", ".join(str(c) for c, ok in zip(numbers.columns, finite.all(axis=0), strict=True) if not ok)
    if not dropna:
        raise ConfigError(
            f"{bad_rows.sum()} row(s) of {path} have empty, NaN or infinite cells (in {columns}). "
            "Fill them in, or set data.dropna=true to train without those rows."
        )
    if bad_rows.all():
        raise ConfigError(
            f"Every row of {path} has an empty, NaN or infinite cell (in {columns}): nothing is left to train on."
        )
    log.warning(
        f"data.dropna=true: dropped {bad_rows.sum()} of {len(numbers)} rows of {path} "
        f"with empty, NaN or infinite cells (in {columns})."
    )
    return numbers[~bad_rows]


def float_tensor(numbers: pd.DataFrame) -> Tensor:
    return torch.from_numpy(numbers.to_numpy("float32", copy=True))


def make_synthetic(
    n_samples: int, n_features: int, n_targets: int, noise: float, seed: int
) -> tuple[Table, Tensor, Tensor]:
    """Rows y = x·Wᵀ + b + noise·ε with x, W, b, ε standard normal; returns the table and the true (W, b)."""
    generator = torch.Generator().manual_seed(seed)
    weight = torch.randn(n_targets, n_features, generator=generator)
    bias = torch.randn(n_targets, generator=generator)
    features = torch.randn(n_samples, n_features, generator=generator)
    targets = torch.addmm(bias, features, weight.T)
    targets.add_(torch.randn(n_samples, n_targets, generator=generator), alpha=noise)
    table = Table(features, targets, [f"x{i}" for i in range(n_features)], [f"y{i}" for i in range(n_targets)])
    return table, weight, bias


class ShuffledBatches(Sampler[list[Tensor]]):
    """Yields the batches as tensors of row indices, in an order fixed by (seed, epoch), `batches_per_call` at a time.

    Lightning calls `set_epoch` before every epoch, so the order does not depend on the
    global random state: every DDP rank sees the same permutation and takes its share of
    each batch, and a resumed run replays the order it would have had.
    """

    def __init__(
        self,
        n_rows: int,
        batch_size: int,
        shuffle: bool,
        seed: int,
        drop_last: bool = False,
        rows: Tensor | None = None,
        device: torch.device | str = "cpu",
        batches_per_call: int = 1,
    ) -> None:
        self.n_rows, self.batch_size, self.batches_per_call = n_rows, batch_size, batches_per_call
        self.shuffle, self.seed, self.drop_last = shuffle, seed, drop_last
        self.rows = rows  # the split's row numbers in the whole table (None: rows 0..n_rows-1)
        self.device = torch.device(device)  # where the table is: indices made there need no copy per batch
        self.epoch, self.rank, self.world_size = 0, 0, 1

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    @property
    def n_batches(self) -> int:
        """Batches (optimizer steps) per epoch."""
        full, partial = divmod(self.n_rows, self.batch_size)
        return full + int(partial >= self.world_size and not self.drop_last)

    def __len__(self) -> int:
        """Lists of batches per epoch: what Lightning counts as batches."""
        return -(-self.n_batches // self.batches_per_call)

    def batches_in(self, calls: int) -> int:
        """The batches in the first `calls` lists of an epoch (Lightning's limit_train_batches counts lists)."""
        return min(calls * self.batches_per_call, self.n_batches)

    def __iter__(self) -> Iterator[list[Tensor]]:
        batches = self.batches()
        while group := list(itertools.islice(batches, self.batches_per_call)):
            yield group

    def batches(self) -> Iterator[Tensor]:
        """This epoch's batches one by one."""
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed + self.epoch)
            order = torch.randperm(self.n_rows, generator=generator).to(self.device)
        else:
            order = torch.arange(self.n_rows, device=self.device)
        if self.rows is not None:
            order = self.rows[order]
        for start in range(0, self.n_batches * self.batch_size, self.batch_size):
            yield order[start : start + self.batch_size][self.rank :: self.world_size]


class BatchLists(TensorDataset):
    """A `TensorDataset` indexed by a list of row-index tensors: it returns those batches, each gathered at once."""

    def __getitem__(self, batches: list[Tensor]) -> list[tuple[Tensor, ...]]:
        return [tuple(tensor[rows] for tensor in self.tensors) for rows in batches]


class TabularDataModule(L.LightningDataModule):
    """Splits a table into train/val/test once, fits the normalization on train, and serves batches."""

    def __init__(
        self,
        table: Table,
        name: str = "table",
        val_fraction: float = 0.2,
        test_fraction: float = 0.0,
        batch_size: int | None = 256,
        shuffle: bool = True,
        drop_last: bool = False,
        batches_per_call: int = 32,
        num_workers: int = 0,
        normalize: str = "standardize",
        scale: float = 0.1,
        normalize_targets: bool = False,
        seed: int = 42,
    ) -> None:
        super().__init__()
        if batch_size is not None and batch_size <= 0:
            raise ConfigError(
                f"data.batch_size={batch_size}: give a positive number of rows, or null for whole-split batches."
            )
        if batches_per_call < 1:
            raise ConfigError(
                f"data.batches_per_call={batches_per_call}: the model needs at least one batch per call; "
                "1 gives Lightning's usual one step per training_step."
            )
        self.name, self.batch_size, self.shuffle, self.drop_last = name, batch_size, shuffle, drop_last
        self.batches_per_call = batches_per_call
        self.num_workers, self.seed, self.normalize = num_workers, seed, normalize
        self.train, self.val, self.test = split(table, val_fraction, test_fraction, seed)
        self.feature_normalizer = Normalizer(len(table.feature_names))
        self.feature_normalizer.fit(table.all_features, normalize, scale, table.feature_names, self.train.rows)
        self.target_normalizer = Normalizer(len(table.target_names))
        if normalize_targets:
            self.target_normalizer.fit(table.all_targets, normalize, scale, table.target_names, self.train.rows)

    @classmethod
    def from_csv(
        cls, path: str, targets: Sequence[str], features: Sequence[str] | None = None, dropna: bool = False, **options
    ) -> "TabularDataModule":
        """A data module over the columns of a CSV file (`data=csv` and the built-in tables)."""
        options.setdefault("name", resolve_path(path).stem)
        return cls(read_csv(path, targets, features, dropna), **options)

    @classmethod
    def from_synthetic(
        cls, n_samples: int, n_features: int, n_targets: int = 1, noise: float = 0.1, **options
    ) -> "TabularDataModule":
        """A data module over generated rows whose true weights are kept in `true_weight`/`true_bias`."""
        options.setdefault("name", "synthetic")
        table, weight, bias = make_synthetic(n_samples, n_features, n_targets, noise, options.get("seed", 42))
        module = cls(table, **options)
        module.true_weight, module.true_bias = weight, bias
        return module

    @property
    def feature_names(self) -> list[str]:
        return self.train.feature_names

    @property
    def target_names(self) -> list[str]:
        return self.train.target_names

    def setup(self, stage: str) -> None:
        """Move the tables to the training device once, so no batch is copied there later."""
        device = self.trainer.strategy.root_device if self.trainer else torch.device("cpu")
        if self.train.all_features.device != device:  # one copy of the columns, shared by the three splits
            features, targets = self.train.all_features.to(device), self.train.all_targets.to(device)
            self.train, self.val, self.test = (part.on(features, targets) for part in (self.train, self.val, self.test))

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train, shuffle=self.shuffle, drop_last=self.drop_last)

    def val_dataloader(self) -> DataLoader | list:
        # No loader at all when there is no such split: Lightning then runs no such loop.
        return self._loader(self.val, shuffle=False, drop_last=False) if len(self.val) else []

    def test_dataloader(self) -> DataLoader | list:
        return self._loader(self.test, shuffle=False, drop_last=False) if len(self.test) else []

    def check_batch_split(self, world_size: int) -> None:
        """Each of `world_size` processes takes an equal share of every training batch, or this explains why not."""
        batch_size = self.batch_size or len(self.train)
        if batch_size % world_size:
            setting = (
                f"data.batch_size={self.batch_size}" if self.batch_size else f"data.batch_size=null ({batch_size} rows)"
            )
            raise ConfigError(
                f"{setting} does not split evenly over {world_size} processes; choose a multiple of {world_size}."
            )

    def _loader(self, part: Table, shuffle: bool, drop_last: bool) -> DataLoader:
        batch_size = self.batch_size or len(part)
        sampler = ShuffledBatches(
            len(part),
            batch_size,
            shuffle,
            self.seed,
            drop_last,
            rows=part.rows,
            device=part.all_features.device,
            batches_per_call=self.batches_per_call,
        )
        if self.trainer is not None and self.trainer.world_size > 1:
            sampler.rank, sampler.world_size = self.trainer.global_rank, self.trainer.world_size
        dataset = BatchLists(part.all_features, part.all_targets)
        # batch_size=None: each item is the sampler's list of index tensors, each batch fetched by one gather.
        return DataLoader(dataset, sampler=sampler, batch_size=None, num_workers=self.num_workers)


def split(table: Table, val_fraction: float, test_fraction: float, seed: int) -> tuple[Table, Table, Table]:
    """Shuffle the rows with `seed` and cut them into train, validation and test tables."""
    for key, fraction in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0 <= fraction < 1:
            raise ConfigError(f"data.{key}={fraction} must be at least 0 and below 1.")
    if val_fraction + test_fraction >= 1:
        raise ConfigError(
            f"data.val_fraction + data.test_fraction = {val_fraction + test_fraction:g} leaves no training rows; "
            "keep their sum below 1."
        )
    n_rows = len(table)
    n_val, n_test = (max(1, round(n_rows * f)) if f > 0 else 0 for f in (val_fraction, test_fraction))
    if n_rows - n_val - n_test < 1:
        raise ConfigError(
            f"The table has {n_rows} rows: too few for data.val_fraction={val_fraction} and "
            f"data.test_fraction={test_fraction}. Lower the fractions or add rows."
        )
    if n_val == n_test == 0:
        return table, table.select(torch.arange(0)), table.select(torch.arange(0))
    order = torch.randperm(n_rows, generator=torch.Generator().manual_seed(seed))
    n_train = n_rows - n_val - n_test
    return (
        table.select(order[:n_train]),
        table.select(order[n_train : n_train + n_val]),
        table.select(order[n_train + n_val :]),
    )
