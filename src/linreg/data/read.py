"""Files in, a `Table` of float32 tensors out: CSV files (the user's or a built-in one) and generated rows."""

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from linreg.errors import ConfigError

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
    return Table(float_tensor(numbers[features], path), float_tensor(numbers[targets], path), features, targets)


def open_csv(path: str, setting: str = "data.path") -> pd.DataFrame:
    """The CSV file that `setting` names, as a DataFrame with at least one row."""
    file = resolve_path(path)
    if file.is_dir():
        raise ConfigError(f"{setting}={path} is a directory; give the path of a CSV file in it.")
    if not file.exists():
        raise ConfigError(f"{setting}={path}: no such file ({file.resolve()}). Give the path of a CSV file.")
    if not file.is_file():  # a FIFO, a device, a socket: reading it could wait forever
        raise ConfigError(f"{setting}={path} is not a regular file; give the path of a CSV file.")
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


def float_tensor(numbers: pd.DataFrame, path: str) -> Tensor:
    """The columns as float32, or an error naming the first cell too large for it (it would become inf)."""
    with np.errstate(over="ignore"):
        values = numbers.to_numpy("float32", copy=True)
    too_large = ~np.isfinite(values)
    if too_large.any():
        row, column = np.argwhere(too_large)[0]
        raise ConfigError(
            f"Column {numbers.columns[column]} of {path} holds {numbers.iat[row, column]:g} on line "
            f"{numbers.index[row] + 2}: beyond the ±3.4e38 of the 32-bit numbers training uses. Rescale the "
            "column (e.g. divide it by a power of ten) or leave it out."
        )
    return torch.from_numpy(values)


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
