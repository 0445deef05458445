"""From the columns of a real table to the numbers a linear model takes, and back to names people know.

A *plan* says, for each feature column, how its cells become numbers: a number or a true/false
(blanks filled), a date (days since the earliest training date, month, weekday), or categories
(one-hot against the most common level). It is fitted on the training rows only and kept as plain
values (lists, numbers, strings), so a checkpoint carries it and predict.py applies it to raw rows.
"""

import difflib
import functools
import logging
import re
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import torch

from linreg.config import DATE_PART_CHOICES
from linreg.data.formats import FALSE_WORDS, TRUE_WORDS, TextFormat, describe_row
from linreg.errors import ConfigError
from linreg.least_squares import TrainingSums
from linreg.serving import DATE_PARTS, TRANSFORMS, kept_names, plan_features
from linreg.serving import feature_names as entry_names

log = logging.getLogger(__name__)

MISSING_LEVEL = "(missing)"  # the level of a blank cell in a categorical column
OTHER_LEVEL = "other"  # the level that collects the rare ones
BLANK_WORDS = {"", "na", "n/a", "nan", "null", "none", "-nan", "#n/a"}
FLOAT32_MAX = float(np.finfo(np.float32).max)
RELEASE_ROWS = 1 << 18  # encoding returns the memory of the rows it has written to the system this often


@dataclass(frozen=True)
class ColumnSettings:
    """The data settings that pick and encode columns (see configs/data/csv.yaml)."""

    targets: Sequence[str]
    features: Sequence[str] | None = None
    exclude: Sequence[str] = ()
    categorical: Sequence[str] = ()
    dates: Sequence[str] = ()
    impute: str | None = None
    missing_indicator: bool = False
    min_category_count: int = 5
    max_categories: int = 50
    date_parts: Sequence[str] = DATE_PARTS
    text: TextFormat = field(default_factory=TextFormat)
    formula: dict | None = None  # data.formula as formulas.read_formula reads it


@dataclass
class Encoded:
    """A table as float32 (or float64) features (rows × expanded features) and targets; `blank` marks rows left
    unfilled."""

    features: np.ndarray
    targets: np.ndarray | None
    blank: np.ndarray
    training_sums: TrainingSums | None = None  # of the training rows' float64 values, when asked for


def as_list(names: str | Sequence[str] | None) -> list[str]:
    """`price` and `[price]` mean the same column list."""
    return [] if names is None else [names] if isinstance(names, str) else [str(n) for n in names]


def hydra_list(key: str, names: Sequence[str]) -> str:
    """The override that sets `key` to these column names, quoted as Hydra needs when a name has spaces or symbols."""
    if all(re.fullmatch(r"[\w.-]+", name) for name in names):
        return f"{key}=[{','.join(names)}]"
    quoted = ",".join("'" + name.replace("\\", "\\\\").replace("'", "\\'") + "'" for name in names)
    return f'"{key}=[{quoted}]"'


def choose_columns(table: pa.Table, settings: ColumnSettings, path: str) -> tuple[dict[str, str], list[str]]:
    """The feature columns with their kind (number, boolean, date, category) and the target columns."""
    targets = as_list(settings.targets)
    if not targets:
        raise ConfigError(
            "data.targets is not set; name the column(s) to predict, e.g. data.targets=[price], or write the model "
            "as a formula, e.g. \"data.formula='price ~ area + city'\"."
        )
    named = {"data.targets": targets, "data.features": as_list(settings.features)}
    if settings.formula:  # (the formula names the targets and the features)
        named = {"data.formula": targets + as_list(settings.features)}
    named |= {
        "data.exclude": [name for name in as_list(settings.exclude) if not of_column(name, table.column_names)],
        "data.categorical": as_list(settings.categorical),
        "data.dates": as_list(settings.dates),
    }
    check_names_exist(named, table.column_names, path)
    roles = {"data.formula's features" if settings.formula else "data.features": as_list(settings.features)}
    roles |= {key: named[key] for key in ("data.categorical", "data.dates")}
    for key, names in roles.items():
        both = [c for c in targets if c in names]
        if both:
            raise ConfigError(
                f"Column(s) {', '.join(both)} are in data.targets and in {key}; a target is the number the model "
                f"predicts, read as it is: remove {'them' if len(both) > 1 else 'it'} from {key}."
            )
    kept = as_list(settings.features) or [c for c in table.column_names if c not in targets]
    features = [c for c in kept if c not in named["data.exclude"]]
    if not features:
        raise ConfigError(
            f"{path} has no feature column left besides the targets {', '.join(targets)} and data.exclude; "
            "keep at least one."
        )
    for target in targets:
        if kind_of(table.column(target), target, settings, path) != "number":
            raise ConfigError(
                f"Target column {target} of {path} is not numeric (e.g. {first_text(table.column(target))!r}): "
                "linear regression predicts numbers. Choose a numeric column in data.targets, or convert this one."
            )
    kinds = {name: kind_of(table.column(name), name, settings, path) for name in features}
    return kinds, targets


def of_column(name: str, columns: Sequence[str]) -> str | None:
    """The column whose encoded feature `name` may be (`Year.month`, `city=Paris`, `area.missing`), or None:
    data.exclude takes those names too, to leave out one feature of a column."""
    if name in columns:
        return None
    return next((column for column in columns if name.startswith((f"{column}.", f"{column}="))), None)


def check_names_exist(named: dict[str, list[str]], columns: list[str], path: str) -> None:
    """Every column a setting names is in the file: one error listing all that are not, with near misses."""
    unknown = [(key, name) for key, names in named.items() for name in names if name not in columns]
    if not unknown:
        return
    problems = []
    for key, name in unknown:
        close = difflib.get_close_matches(name, columns, n=1)
        problems.append(f"{name!r} ({key}{'; did you mean ' + repr(close[0]) + '?' if close else ''})")
    symbols = [name for name in columns if not re.fullmatch(r"[\w.-]+", name)]
    example = hydra_list(unknown[0][0], symbols[:1])
    quoting = f" Names with spaces or symbols need quotes on the command line, e.g. {example}." if symbols else ""
    raise ConfigError(
        f"Column(s) {', '.join(problems)} are not in {path}; its columns are: {', '.join(columns)}.{quoting}"
    )


def kind_of(column: pa.ChunkedArray, name: str, settings: ColumnSettings, path: str) -> str:
    """How a column's cells become numbers, from its type over the whole file and the settings that name it."""
    if name in as_list(settings.categorical):
        return "category"
    kind = column.type
    if name in as_list(settings.dates) or pa.types.is_date(kind) or pa.types.is_timestamp(kind):
        dates_of(column, name, path)  # (an error naming the first cell that is no date)
        return "date"
    if pa.types.is_boolean(kind):
        return "boolean"
    if pa.types.is_null(kind):
        raise ConfigError(
            f"Column {name} of {path} is blank in every row; leave it out with {hydra_list('data.exclude', [name])}."
        )
    if pa.types.is_integer(kind) or pa.types.is_floating(kind):
        return "number"
    if pa.types.is_nested(kind) or pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
        raise ConfigError(
            f"Column {name} of {path} holds values of type {kind} (lists, records or bytes), which do not become "
            f"numbers; leave it out with {hydra_list('data.exclude', [name])}."
        )
    strings = text_of(column)
    values, bad = text_numbers(strings, settings.text)
    if not bad.any():
        return "number"
    decimal_comma = reads_with_decimal_comma(strings, settings.text)
    if settings.text.thousands == "," and decimal_comma:
        raise not_numeric(  # ("18,0": data.thousands=',' would have read 180, ten times the value)
            name,
            path,
            strings,
            bad,
            "Its commas do not separate thousands (groups of three digits); if the comma is the decimal point, set "
            "\"data.decimal=','\" instead of data.thousands",
        )
    if (~np.isnan(values)).sum() >= bad.sum():  # mostly numbers: a stray cell, not a text column
        raise not_numeric(
            name,
            path,
            strings,
            bad,
            f"Correct the cell, list the column in data.categorical to treat it as categories, or leave it out "
            f"with {hydra_list('data.exclude', [name])}",
        )
    hint = thousands_hint(strings, settings.text)
    example = first_text(column)
    if hint:  # ("1,000" reads both ways: the comma may be the decimal point too)
        other = ", or, if the comma is the decimal point, \"data.decimal=','\"" if decimal_comma else ""
        raise ConfigError(
            f"Column {name} of {path} holds numbers written with a thousands separator (e.g. {example!r}); set "
            f"{hint} to read them as numbers{other}."
        )
    if decimal_comma:
        raise ConfigError(
            f"Column {name} of {path} holds numbers written with a decimal comma (e.g. {example!r}); set "
            "\"data.decimal=','\" to read them as numbers."
        )
    if strings.dropna().str.fullmatch(r"\s*\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}([ T][\d:.]+)?\s*").all():
        return "date"
    check_no_units(strings, name, path)
    return "category"


# A number with a unit or symbol around it: "12.5 kg", "$1,200", "45%", "3.2e3 m/s".
NUMBER_WITH_UNIT = r"\s*[$€£¥]?\s*[-+]?(\d[\d,]*(\.\d*)?|\.\d+)([eE][-+]?\d+)?\s*([%°$€£¥]|[^\W\d_][^\d]{0,11})?\s*"


def check_no_units(strings: pd.Series, name: str, path: str) -> None:
    """A text column that is numbers with units ("12.5 kg") is refused, naming a cell: as categories its values
    would each be rare, pooled into one level, and the column silently useless. Columns with few different
    values ("2dr", "4dr") stay categories."""
    cells = strings.dropna()
    with_unit = cells.str.fullmatch(NUMBER_WITH_UNIT)
    different = cells[with_unit].nunique()
    if not len(cells) or with_unit.mean() < 0.8 or different <= min(20, len(cells) // 2):
        return
    first = int(with_unit.to_numpy().argmax())
    raise ConfigError(
        f"Column {name} of {path} holds numbers with a unit or symbol ({describe_row(cells.index[first], path)}: "
        f"{cells.iloc[first]!r}), which are read only as plain numbers. Write the numbers alone in the file (the "
        f"unit in the column's name), list the column in data.categorical to treat its values as categories, or "
        f"leave it out with {hydra_list('data.exclude', [name])}."
    )


def not_numeric(name: str, path: str, strings: pd.Series, bad: np.ndarray, fix: str, first_row: int = 0) -> ConfigError:
    row = int(bad.argmax())
    return ConfigError(
        f"Column {name} of {path} is not numeric: {describe_row(first_row + row, path)} holds {strings.iloc[row]!r}. "
        f"{fix}."
    )


def thousands_hint(strings: pd.Series, text: TextFormat) -> str | None:
    """The data.thousands setting that would read this text column as numbers, if one would."""
    if text.thousands:
        return None
    for separator in (",", ".", " ", "'"):
        if separator != text.decimal and strings.str.contains(separator, regex=False).any():
            if not text_numbers(strings, TextFormat(decimal=text.decimal, thousands=separator))[1].any():
                return f"\"data.thousands='{separator}'\""  # (quoted for the shell and for Hydra)
    return None


def reads_with_decimal_comma(strings: pd.Series, text: TextFormat) -> bool:
    """Whether this text column is numbers once a comma is read as the decimal point."""
    if text.decimal != "." or not strings.str.contains(",", regex=False).any():
        return False
    thousands = None if text.thousands == "," else text.thousands
    return not text_numbers(strings, TextFormat(decimal=",", thousands=thousands))[1].any()


def usable_rows(table: pa.Table, kinds: dict[str, str], targets: list[str], settings: ColumnSettings, path: str):
    """The table without the rows that cannot be trained on: a blank target, or (impute=drop) a blank feature.

    Blanks in other numeric features (of rows with a target) are an error unless data.impute fills them.
    """
    keep = np.ones(table.num_rows, dtype=bool)
    no_target = np.zeros_like(keep)
    for name in targets:
        no_target |= blank_cells(table.column(name), "number", settings.text, name, path)
    blank_features = {  # (in the rows that have a target: the others are left out anyway)
        name: blank_cells(table.column(name), kind, settings.text, name, path) & ~no_target
        for name, kind in kinds.items()
        if kind != "category"
    }
    blank_features = {name: blank for name, blank in blank_features.items() if blank.any()}
    keep &= ~no_target
    if blank_features and settings.impute is None:
        counts = ", ".join(f"{name} ({blank.sum()} blank)" for name, blank in blank_features.items())
        raise ConfigError(
            f"{path} has blank cells in the feature column(s) {counts}. Fill them with the training rows' "
            "data.impute=median (or mean, most_frequent; data.missing_indicator=true also marks them), or "
            "train without those rows: data.impute=drop."
        )
    if settings.impute == "drop":
        for blank in blank_features.values():
            keep &= ~blank
    if keep.all():
        return table
    if not keep.any():
        raise ConfigError(f"Every row of {path} has a blank target or feature: nothing is left to train on.")
    reasons = [f"{no_target.sum()} with a blank target ({', '.join(targets)})"] if no_target.any() else []
    if settings.impute == "drop" and blank_features:
        reasons.append(f"{(~keep & ~no_target).sum()} with blank features (data.impute=drop)")
    log.warning(f"Left out {(~keep).sum()} of {len(keep)} rows of {path}: {'; '.join(reasons)}.")
    return table.filter(pa.array(keep))


def blank_cells(column: pa.ChunkedArray, kind: str, text: TextFormat, name: str, path: str) -> np.ndarray:
    """The rows where a number, true/false or date column has no value."""
    if not column.null_count and kind == "number" and not is_text(column):
        return np.zeros(len(column), dtype=bool)  # (Arrow counts a typed column's blanks for free)
    return np.isnan(numbers_of(column, kind, text, name, path)).any(axis=1)


def fit_plan(
    table: pa.Table,
    kinds: dict[str, str],
    targets: list[str],
    settings: ColumnSettings,
    train_rows,
    path: str,
    whole_column: Callable[[str], pa.ChunkedArray] | None = None,
) -> dict:
    """The encoding of every feature, fitted on `train_rows` (positions; None: all rows), as plain values.
    `whole_column` reads a column whole where `table` holds the first rows only (a Parquet file read in batches,
    whose numbers need nothing fitted, only the check for a row number)."""
    features = []
    for name, kind in kinds.items():
        column = table.column(name)
        entry: dict = {"column": name, "kind": kind}
        if kind == "category":
            entry |= fit_levels(text_of(column), train_rows, settings, name, path)
        else:
            whole = None if whole_column is None else functools.partial(whole_column, name)
            entry |= fit_numbers(column, kind, settings, train_rows, name, path, whole)
        features.append(entry)
    exclude_features(features, [name for name in as_list(settings.exclude) if name not in table.column_names], path)
    plan = {"features": features, "targets": list(targets), "text": asdict(settings.text)}
    plan["features"] = [entry for entry in features if kept_names(entry)]
    if settings.formula:
        plan["formula"] = {key: settings.formula[key] for key in ("text", "targets", "terms")}
        check_formula_kinds(plan, kinds)
    return plan


def check_formula_kinds(plan: dict, kinds: dict[str, str]) -> None:
    """A transform or power in data.formula takes a column of numbers (or true/false)."""
    text = plan["formula"]["text"]
    for term in plan["formula"]["terms"]:
        for factor in term:
            kind = kinds.get(factor["column"])
            if kind is None:
                raise ConfigError(
                    f"data.formula={text!r} uses column {factor['column']}, which data.exclude leaves out; take it "
                    "out of one of them."
                )
            if (factor["transform"] or factor["power"]) and kind not in ("number", "boolean"):
                raise ConfigError(
                    f"data.formula={text!r}: {factor['name']} takes a column of numbers, and "
                    f"{factor['column']} is read as a {kind}."
                )


def exclude_features(entries: list[dict], names: list[str], path: str) -> None:
    """data.exclude's encoded names (`Year.month`): each one a feature of its column's entry, left out there."""
    for name in names:
        entry = next((entry for entry in entries if of_column(name, [entry["column"]])), None)
        if entry is None:  # (its column is excluded, a target, or not among data.features)
            raise ConfigError(f"data.exclude names {name!r}, a feature of a column of {path} that is not used.")
        if name not in entry_names(entry):
            raise ConfigError(
                f"data.exclude names {name!r}, which is no feature of column {entry['column']} of {path}; its "
                f"features are {', '.join(entry_names(entry)) or 'none'}."
            )
        entry["drop"] = [*entry.get("drop", []), name]


def leave_out_uninformative(plan: dict, features: np.ndarray, train_rows, path: str) -> np.ndarray:
    """The encoded features without those constant in the training rows (a date part that never varies) or equal
    there to an earlier one (`rownames` repeating `Year`), named in one line and kept out by the plan's `drop`.
    Either leaves least squares without a unique answer (the intercept, or the twin, takes its part), and the
    model learns nothing from it. One pass over the training rows' columns; the kept columns are moved into the
    array's own memory, so a big table is not copied."""
    rows = len(features) if train_rows is None else len(train_rows)
    if rows < 2 or not features.shape[1]:
        return features  # (one row: everything is constant, and the split's own check says what is wrong)
    low, high, total = column_summaries(features, train_rows)
    names, seen, left_out = feature_names(plan), {}, {}
    for position, name in enumerate(names):
        if low[position] == high[position]:
            left_out[name] = f"{low[position]:g} in every training row"
            continue
        alike = seen.setdefault((low[position], high[position], total[position]), [])
        twin = next((other for other in alike if same_column(features, train_rows, other, position)), None)
        if twin is None:
            alike.append(position)
            continue
        keeps = hydra_list("data.exclude", [names[twin]])
        left_out[name] = f"equal to {names[twin]} in every training row; {keeps} keeps it"
    if not left_out:
        return features
    log.warning(
        f"Left out feature(s) of {path} that give the model nothing: "
        f"{'; '.join(f'{name} ({reason})' for name, reason in left_out.items())}."
    )
    plan["drop"] = list(left_out)
    return without_columns(features, np.array([name not in left_out for name in names]))


def column_summaries(features: np.ndarray, train_rows) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each column's lowest, highest value and (float32) sum over the training rows, a block of rows at a time in
    the rows' order (gathering them in the split's shuffled order would cost more than the sums). The sums only
    tell columns apart: equal columns have equal ones. torch's reductions take half numpy's time here."""
    columns, dtype = features.shape[1], torch.from_numpy(features[:0]).dtype
    low, high = torch.full((columns,), np.inf, dtype=dtype), torch.full((columns,), -np.inf, dtype=dtype)
    total = torch.zeros(columns, dtype=dtype)
    training = None
    if train_rows is not None:
        training = np.zeros(len(features), dtype=bool)
        training[train_rows] = True
    for start in range(0, len(features), RELEASE_ROWS):
        block = features[start : start + RELEASE_ROWS]
        block = torch.from_numpy(block if training is None else block[training[start : start + RELEASE_ROWS]])
        if len(block):
            block_low, block_high = torch.aminmax(block, dim=0)
            low, high = torch.minimum(low, block_low), torch.maximum(high, block_high)
            total += block.sum(dim=0)
    return low.numpy(), high.numpy(), total.numpy()


def same_column(features: np.ndarray, train_rows, first: int, second: int) -> bool:
    rows = slice(None) if train_rows is None else train_rows
    return bool(np.array_equal(features[rows, first], features[rows, second]))


def without_columns(features: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """The columns `keep` marks, moved to the front of the array's own memory a block of rows at a time (each
    block's new place begins no later than its old one): a view of that memory, contiguous, rows × kept."""
    rows, kept = len(features), int(keep.sum())
    flat = features.reshape(-1)
    for start in range(0, rows, RELEASE_ROWS):
        block = features[start : start + RELEASE_ROWS][:, keep]  # (a copy: read before its place is written)
        flat[start * kept : (start + len(block)) * kept] = block.reshape(-1)
    return flat[: rows * kept].reshape(rows, kept)


def fit_numbers(
    column: pa.ChunkedArray,
    kind: str,
    settings: ColumnSettings,
    train_rows,
    name: str,
    path: str,
    whole: Callable[[], pa.ChunkedArray] | None = None,
) -> dict:
    """A number, true/false or date column's plan: the date origin, the fills and the indicator."""
    entry: dict = {}
    if kind == "date":
        moments = dates_of(column, name, path)
        origin = moments.iloc[train_rows if train_rows is not None else slice(None)].min()
        entry["origin"] = origin.floor("D").isoformat() if not pd.isna(origin) else "1970-01-01T00:00:00"
        entry["parts"] = list(settings.date_parts)
    elif kind == "number" and looks_like_row_ids(column, settings.text, name, path, whole):
        log.warning(
            f"Column {name} of {path} looks like a row number (whole numbers rising by the same step) and is used as a "
            f"feature; leave it out with {hydra_list('data.exclude', [name])} unless it measures something."
        )
    entry["fill"], entry["indicator"] = None, False
    if settings.impute in (None, "drop") and not settings.missing_indicator:
        return entry  # (nothing to learn from the values: a large numeric table is not converted twice)
    values = numbers_of(column, kind, settings.text, name, path, origin=entry.get("origin"), parts=settings.date_parts)
    train_values = values if train_rows is None else values[train_rows]
    entry["fill"] = fill_values(train_values, settings.impute)
    entry["indicator"] = bool(settings.missing_indicator and np.isnan(train_values).any())
    return entry


def fit_levels(strings: pd.Series, train_rows, settings: ColumnSettings, name: str, path: str) -> dict:
    """The levels of a categorical column in the training rows: kept ones, rare ones (→ other), the reference."""
    train = strings if train_rows is None else strings.iloc[train_rows]
    counts = category_cells(train).value_counts()
    exclude = hydra_list("data.exclude", [name])
    if len(counts) >= 10 and len(counts) >= 0.9 * len(train):  # (car names, customer ids: nothing to learn)
        raise ConfigError(
            f"Column {name} of {path} holds a different value in almost every training row ({len(counts)} in "
            f"{len(train)}, e.g. {counts.index[0]!r}), as an id or a name does: as categories it gives the model "
            f"nothing to learn from. Leave it out with {exclude}."
        )
    if len(counts) > settings.max_categories:
        raise ConfigError(
            f"Column {name} has {len(counts)} different values in the training rows, more than "
            f"data.max_categories={settings.max_categories}: one-hot encoding would add a feature for each. "
            f"Leave it out with {exclude}, or raise data.max_categories."
        )
    ordered = sorted(counts.items(), key=lambda item: (-item[1], str(item[0])))  # most common first, then by name
    common = [str(level) for level, count in ordered if count >= settings.min_category_count]
    rare = [str(level) for level, count in ordered if count < settings.min_category_count]
    if not common:  # every level is rare: the grouped "other" is the reference, and the column gives no feature
        log.warning(
            f"Every value of column {name} occurs in fewer than data.min_category_count={settings.min_category_count}"
            " training rows, so all would be pooled into one level: the column gives no feature and is left out. "
            f"Lower data.min_category_count to keep it, or leave it out with {exclude}."
        )
        return {"reference": OTHER_LEVEL, "levels": [], "rare": rare}
    return {"reference": common[0], "levels": common[1:] + ([OTHER_LEVEL] if rare else []), "rare": rare}


def fill_values(values: np.ndarray, impute: str | None) -> list[float] | None:
    """What blanks become (per part of the column), from the training rows; None: they are not filled."""
    if impute in (None, "drop"):
        return None
    values = values.reshape(len(values), -1)
    fills = []
    for part in values.T:
        known = part[~np.isnan(part)]
        if not len(known):
            fills.append(0.0)
        elif impute == "mean":
            fills.append(float(known.mean()))
        elif impute == "median":
            fills.append(float(np.median(known)))
        else:
            levels, counts = np.unique(known, return_counts=True)
            fills.append(float(levels[counts.argmax()]))
    return fills


def looks_like_row_ids(
    column: pa.ChunkedArray,
    text: TextFormat,
    name: str,
    path: str,
    whole: Callable[[], pa.ChunkedArray] | None = None,
) -> bool:
    """Whole numbers rising by the same step without blanks (the first thousand rows decide most columns at once):
    1, 2, 3, …; not the squares 0, 1, 4, 9 of a polynomial's column. `whole` reads the whole column where
    `column` is its first rows only (a Parquet file read in batches)."""
    if len(column) < 3 or column.null_count:
        return False
    for read in (lambda: column.slice(0, 1000), whole or (lambda: column)):
        part = read()
        values = numbers_of(part, "number", text, name, path)[:, 0] if is_text(part) else part.to_numpy()
        steps = np.diff(values)
        if not (np.all(values == np.round(values)) and steps[0] > 0 and np.all(steps == steps[0])):
            return False
    return True


def feature_names(plan: dict) -> list[str]:
    """The names of the encoded features, as the equation and TensorBoard show them: `city=Lyon`, `sold.days`
    (and a formula's terms: `carat:cut=Good`, `I(carat ** 2)`)."""
    blocks = {entry["column"]: (kept_names(entry), np.zeros((0, len(kept_names(entry))))) for entry in plan["features"]}
    return plan_features(plan, blocks)[0]


def target_names(plan: dict) -> list[str]:
    """The targets as the model predicts them: a formula's `np.log(price)`, else the target columns."""
    return [target["name"] for target in plan["formula"]["targets"]] if plan.get("formula") else list(plan["targets"])


def plan_fault(plan: Any, names: Sequence[str]) -> str | None:
    """What is wrong with a plan read from a checkpoint (untrusted data), or None: its shape, each entry's
    values, and the features it gives, which must be the model's `names`."""

    def texts(value: Any) -> bool:
        return isinstance(value, list) and all(isinstance(item, str) for item in value)

    if not isinstance(plan, dict) or not isinstance(plan.get("features"), list) or not texts(plan.get("targets")):
        return "the column plan is not a list of features and targets"
    text = plan.get("text")
    if not isinstance(text, dict) or not all(
        text.get(key) is None or (isinstance(text.get(key), str) and len(text[key]) == 1)
        for key in ("sep", "decimal", "thousands")
    ):
        return "the column plan's text format is not single characters"
    for entry in plan["features"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("column"), str):
            return "a feature of the column plan has no column name"
        kind, column = entry.get("kind"), entry["column"]
        if kind == "category":
            ok = isinstance(entry.get("reference"), str) and texts(entry.get("levels")) and texts(entry.get("rare"))
        elif kind in ("number", "boolean", "date"):
            fill = entry.get("fill")
            ok = isinstance(entry.get("indicator"), bool) and (
                fill is None or (isinstance(fill, list) and all(type(value) in (int, float) for value in fill))
            )
            if kind == "date":
                origin, parts = entry.get("origin"), entry.get("parts", DATE_PARTS)
                ok = ok and isinstance(origin, str) and not pd.isna(pd.to_datetime(origin, errors="coerce"))
                ok = ok and isinstance(parts, list | tuple) and set(parts) <= set(DATE_PART_CHOICES)
        else:
            ok = False
        drop = entry.get("drop", [])
        ok = ok and texts(drop) and set(drop) <= set(entry_names(entry))
        if not ok:
            return f"the column plan's entry for {column!r} is malformed"
    if not isinstance(plan.get("drop", []), list) or not texts(plan.get("drop", [])):
        return "the column plan's features left out are not names"
    if "formula" in plan and formula_fault(plan["formula"], plan["targets"]):
        return "the column plan's formula is malformed"
    if feature_names(plan) != list(names):
        return "the column plan does not give the model's features"
    return None


def formula_fault(formula: Any, targets: list[str]) -> bool:
    """Whether a checkpoint's formula is other than read_formula's plain values: text, the plan's `targets` and
    terms of factors naming a column, a known transform or a power (never evaluated: these are only looked up)."""

    def factor_ok(factor: Any) -> bool:
        return (
            isinstance(factor, dict)
            and isinstance(factor.get("name"), str)
            and isinstance(factor.get("column"), str)
            and factor.get("transform") in (None, *TRANSFORMS)
            and (factor.get("power") is None or (type(factor["power"]) is int and factor["power"] >= 1))
        )

    return not (
        isinstance(formula, dict)
        and isinstance(formula.get("text"), str)
        and isinstance(formula.get("targets"), list)
        and all(factor_ok(target) for target in formula["targets"])
        and [target["column"] for target in formula["targets"]] == targets
        and isinstance(formula.get("terms"), list)
        and all(isinstance(term, list) and all(factor_ok(f) for f in term) for term in formula["terms"])
    )


def numeric_plan(features: Sequence[str], targets: Sequence[str]) -> dict:
    """The plan of a table that was numbers already (generated data, older checkpoints): columns as they are."""
    entries = [{"column": name, "kind": "number", "fill": None, "indicator": False} for name in features]
    return {"features": entries, "targets": list(targets), "text": asdict(TextFormat())}


def text_columns(plan: dict) -> list[str]:
    """The columns to read as text (categories: `007` stays `007`)."""
    return [entry["column"] for entry in plan["features"] if entry["kind"] == "category"]


def encode(plan: dict, table: pa.Table, path: str, with_targets: bool = True) -> Encoded:
    """The table's rows as the plan's float32 features (and targets), in the table's order."""
    return encode_batches(plan, table.to_batches(), table.column_names, path, with_targets)


def encode_batches(
    plan: dict,
    batches: Iterable[pa.RecordBatch],
    column_names: list[str],
    path: str,
    with_targets: bool = True,
    dtype: type = np.float32,
    training: np.ndarray | None = None,
    n_rows: int | None = None,
) -> Encoded:
    """`encode`, a batch of rows at a time, releasing each batch of `batches` once it is written.

    Given the only references to a table's batches, the cells and the float32 arrays are never both
    in memory in full: the peak stays near the size of the arrays (a list of batches is emptied as they are
    encoded; batches read one by one from a file come with their `n_rows`). A blank left unfilled (data.impute
    was not a fill) makes its row's features NaN and marks it in `blank`. With `training` (a mask of the rows),
    each batch is encoded in float64 first and its training rows' sums gathered from those values: the
    statistics of a table too large to keep in float64 still come from its values as read.
    """
    check_names_exist(
        {"the checkpoint's features": [entry["column"] for entry in plan["features"]]}
        | ({"the checkpoint's targets": plan["targets"]} if with_targets else {}),
        column_names,
        path,
    )
    if n_rows is None:
        n_rows, batches = sum(len(batch) for batch in batches), popped(batches)
    features = np.empty((n_rows, len(feature_names(plan))), dtype=dtype)
    targets = np.empty((n_rows, len(plan["targets"])), dtype=dtype) if with_targets else None
    blank, unseen, text = np.zeros(n_rows, dtype=bool), {}, TextFormat(**plan["text"])
    scratch = training is not None and targets is not None  # (float64 blocks, their training rows summed)

    def training_rows() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Encode the batches, handing out each one's training rows in float64 (with `training`): one gather
        takes them all, so no small tensors are kept per batch between the big ones (they fragment the heap)."""
        start = released = 0
        for batch in batches:
            rows = slice(start, start + len(batch))
            into = np.empty((len(batch), features.shape[1])) if scratch else features[rows]
            blank[rows] = encode_rows(plan, text, batch, path, start, into, unseen)
            if targets is not None:
                goals = np.empty((len(batch), targets.shape[1])) if scratch else targets[rows]
                for position, name in enumerate(plan["targets"]):
                    column = pa.chunked_array([batch.column(name)])
                    values = numbers_of(column, "number", text, name, path, start)
                    if plan.get("formula"):
                        values = transformed_target(plan["formula"]["targets"][position], values, path, start)
                    goals[:, position : position + 1] = values
                if scratch:
                    features[rows], targets[rows], mine = into, goals, training[rows]
                    if mine.any():
                        yield torch.from_numpy(into[mine]), torch.from_numpy(goals[mine])
            start += len(batch)
            del batch
            if start - released > RELEASE_ROWS:  # hand the freed batches' memory back before more rows are written
                pa.default_memory_pool().release_unused()
                released = start

    sums = None
    if scratch and training.any():
        sums = TrainingSums.gather(training_rows(), features.shape[1], targets.shape[1])
    else:
        for _ in training_rows():  # (encoded, with no sums to gather)
            pass
    pa.default_memory_pool().release_unused()  # (and the last ones': nothing of the cells is needed any more)
    report_unseen(unseen, path)
    return Encoded(features, targets, blank, sums)


def popped(items: list) -> Iterator:
    """The items, each dropped from the list as it is handed out (so that the caller's is the last reference)."""
    while items:
        yield items.pop(0)


def transformed_target(target: dict, values: np.ndarray, path: str, first_row: int) -> np.ndarray:
    """A target column as the formula transforms it (np.log(price)); a value outside the transform's domain is
    an error naming its line."""
    if not target["transform"]:
        return values
    function, _, defined = TRANSFORMS[target["transform"]]
    outside = ~np.isnan(values) & ~defined(np.nan_to_num(values, nan=1.0))
    if outside.any():
        row = int(outside.argmax())
        raise ConfigError(
            f"Column {target['column']} of {path} holds {values[row, 0]:g} on {describe_row(first_row + row, path)}, "
            f"where the formula's {target['name']} is undefined; leave such rows out of the file, or change the "
            "transform (np.log1p takes zeros)."
        )
    return function(values)


def encode_rows(
    plan: dict,
    text: TextFormat,
    batch: pa.RecordBatch,
    path: str,
    first_row: int,
    out: np.ndarray,
    unseen: dict[str, dict],
) -> np.ndarray:
    """Write one batch's features into `out`; returns its rows that hold a blank the plan does not fill.
    With a formula, each column's features are encoded first, then its terms computed from them."""
    whole = plan.get("formula") or plan.get("drop")  # (else each column's features go straight into `out`)
    widths = [len(kept_names(entry)) for entry in plan["features"]]
    encoded = np.empty((len(batch), sum(widths))) if whole else out  # (float64: a formula multiplies them)
    blank, position = np.zeros(len(batch), dtype=bool), 0
    for entry, width in zip(plan["features"], widths, strict=True):
        column = pa.chunked_array([batch.column(entry["column"])])
        blank |= encode_entry(entry, column, text, path, first_row, encoded[:, position : position + width], unseen)
        position += width
    if whole:
        starts = np.cumsum([0, *widths])
        blocks = {
            entry["column"]: (kept_names(entry), encoded[:, start : start + width])
            for entry, start, width in zip(plan["features"], starts[:-1], widths, strict=True)
        }
        try:
            out[:] = plan_features(plan, blocks)[1]
        except ValueError as error:  # (a formula's transform outside its domain)
            formula = plan["formula"]["text"]
            raise ConfigError(f"data.formula={formula!r} on {path}: {error}; leave those rows out.") from None
    return blank


def encode_entry(
    entry: dict, column: pa.ChunkedArray, text: TextFormat, path: str, first_row: int, out: np.ndarray, unseen: dict
) -> np.ndarray:
    """Write one column's features (those its entry does not drop) into `out`; returns the rows left blank."""
    name, blank = entry["column"], np.zeros(len(column), dtype=bool)
    if entry["kind"] == "category":
        values, counts = encode_levels(text_of(column), entry)
        for level, count in counts.items():
            unseen.setdefault(name, {})[level] = unseen.get(name, {}).get(level, 0) + count
    else:
        values = numbers_of(
            column, entry["kind"], text, name, path, first_row, entry.get("origin"), entry.get("parts", DATE_PARTS)
        )
        missing = np.isnan(values).any(axis=1) if column.null_count or values.dtype == np.float64 else None
        if missing is not None and entry["fill"] is not None:
            values = np.where(np.isnan(values), np.asarray(entry["fill"]), values)
        elif missing is not None:
            blank = missing
        if entry["indicator"]:
            marks = np.zeros(len(values), dtype=bool) if missing is None else missing
            values = np.concatenate([values, marks[:, None]], axis=1)
    if entry.get("drop"):
        values = values[:, [name not in entry["drop"] for name in entry_names(entry)]]
    out[:] = values
    return blank


def encode_levels(strings: pd.Series, entry: dict) -> tuple[np.ndarray, dict]:
    """One-hot columns of the plan's levels; rare training levels count as `other`, unseen ones as none."""
    levels = {level: position for position, level in enumerate(entry["levels"])}
    rare, reference = set(entry["rare"]), entry["reference"]
    cells = category_cells(strings)
    codes = cells.map(levels)
    if OTHER_LEVEL in levels:
        codes = codes.where(~cells.isin(rare), levels[OTHER_LEVEL])
    known = cells.isin(rare) | cells.isin(levels) | (cells == reference)
    one_hot = np.zeros((len(cells), len(levels)))
    rows = np.flatnonzero(codes.notna().to_numpy())
    one_hot[rows, codes.iloc[rows].to_numpy(dtype=np.int64)] = 1.0
    return one_hot, cells[~known].value_counts().to_dict()


def category_cells(strings: pd.Series) -> pd.Series:
    """The cells as category levels: surrounding spaces dropped, every kind of blank the one `(missing)` level."""
    cells = strings.str.strip()
    return cells.where(~(cells.isna() | cells.str.lower().isin(BLANK_WORDS)), MISSING_LEVEL)


def report_unseen(unseen: dict[str, dict], path: str) -> None:
    """One warning for every level that training never saw (those rows count as the reference level)."""
    found = {name: counts for name, counts in unseen.items() if counts}
    if not found:
        return
    rows = sum(sum(counts.values()) for counts in found.values())
    examples = "; ".join(f"{name}: {', '.join(map(repr, list(counts)[:3]))}" for name, counts in found.items())
    log.warning(
        f"{rows} cell(s) of {path} hold categories the training rows did not have ({examples}); "
        "they are encoded like the most common training category of their column."
    )


def is_text(column: pa.ChunkedArray) -> bool:
    return pa.types.is_string(column.type) or pa.types.is_large_string(column.type)


def text_of(column: pa.ChunkedArray) -> pd.Series:
    """The cells as text (None for blanks), whatever type Arrow gave the column."""
    if not is_text(column):
        column = column.cast(pa.string())
    return column.to_pandas()


def first_text(column: pa.ChunkedArray) -> str:
    strings = text_of(column).dropna()
    return strings.iloc[0] if len(strings) else ""


def text_numbers(strings: pd.Series, text: TextFormat) -> tuple[np.ndarray, np.ndarray]:
    """Numbers written as text (with data.decimal and data.thousands), NaN for blanks, and the cells that are not."""
    cleaned = strings.str.strip()
    blank = (cleaned.isna() | cleaned.str.lower().isin(BLANK_WORDS)).to_numpy()
    if text.thousands:  # (only in groups of three digits: "18,0" is no 180, and never read as one)
        separator, point = re.escape(text.thousands), re.escape(text.decimal)
        grouped = rf"[-+]?\d{{1,3}}(?:{separator}\d{{3}})+(?:{point}\d*)?"
        misplaced = cleaned.str.contains(text.thousands, regex=False) & ~cleaned.str.fullmatch(grouped)
        cleaned = cleaned.mask(misplaced.fillna(False), "not a number")
        cleaned = cleaned.str.replace(text.thousands, "", regex=False)
    if text.decimal != ".":
        cleaned = cleaned.str.replace(text.decimal, ".", regex=False)
    values = pd.to_numeric(cleaned.where(~blank), errors="coerce").to_numpy(dtype=np.float64)
    return values, np.isnan(values) & ~blank


def dates_of(column: pa.ChunkedArray, name: str, path: str, first_row: int = 0) -> pd.Series:
    """The cells as timestamps (NaT for blanks), or an error naming the first cell that is not a date."""
    if pa.types.is_date(column.type) or pa.types.is_timestamp(column.type):
        moments = pd.to_datetime(column.to_pandas(), utc=True)
    else:
        strings = text_of(column).str.strip()
        blank = strings.isna() | strings.str.lower().isin(BLANK_WORDS)
        cells = strings.where(~blank)
        moments = pd.to_datetime(cells, errors="coerce", utc=True, format="ISO8601")  # (any mix of ISO forms)
        other = moments.isna() & ~blank
        if other.any():  # other forms (03/01/2024: month first), each cell read on its own
            with warnings.catch_warnings():  # (that each cell is parsed on its own is the point here)
                warnings.filterwarnings("ignore", message="Could not infer format")
                moments[other] = pd.to_datetime(cells[other], errors="coerce", utc=True)
        bad = (moments.isna() & ~blank).to_numpy()
        if bad.any():
            row = int(bad.argmax())
            raise ConfigError(
                f"Column {name} of {path} is not a date: {describe_row(first_row + row, path)} holds "
                f"{strings.iloc[row]!r}. "
                f"Write dates as YYYY-MM-DD, or leave the column out with {hydra_list('data.exclude', [name])}."
            )
    return moments.dt.tz_localize(None)


def numbers_of(
    column: pa.ChunkedArray,
    kind: str,
    text: TextFormat,
    name: str,
    path: str,
    first_row: int = 0,
    origin: str | None = None,
    parts: Sequence[str] = DATE_PARTS,
) -> np.ndarray:
    """A number, true/false or date column as float64 rows × parts (1, or a date's `parts`), NaN for blanks."""
    if kind == "date":
        moments = dates_of(column, name, path, first_row)
        values = {
            "days": lambda: (moments - pd.Timestamp(origin or "1970-01-01")) / pd.Timedelta(days=1),
            "year": lambda: moments.dt.year,
            "month": lambda: moments.dt.month,
            "weekday": lambda: moments.dt.day_of_week,
        }
        return np.stack([values[part]() for part in parts], axis=1).astype(np.float64)
    if is_text(column):
        strings = column.to_pandas()
        if kind == "boolean":
            words = strings.str.strip().map({**dict.fromkeys(TRUE_WORDS, 1.0), **dict.fromkeys(FALSE_WORDS, 0.0)})
            blank = strings.str.strip().str.lower().isin(BLANK_WORDS) | strings.isna()
            values, bad = words.to_numpy(dtype=np.float64), (words.isna() & ~blank).to_numpy()
        else:
            values, bad = text_numbers(strings, text)
        if bad.any():
            raise not_numeric(name, path, strings, bad, f"Write it as a {kind}, as the training rows were", first_row)
    elif column.null_count or not pa.types.is_floating(column.type):
        values = column.cast(pa.float64()).fill_null(np.nan).to_numpy()
    else:  # the usual numeric column, float32 from the reader: no copy to float64
        values = column.to_numpy()
    infinite = np.isinf(values) | (np.abs(values) > FLOAT32_MAX)
    if infinite.any():
        row = int(infinite.argmax())
        raise ConfigError(
            f"Column {name} of {path} holds {values[row]:g} on {describe_row(first_row + row, path)}: infinite, or "
            "beyond the ±3.4e38 of the 32-bit numbers training uses. Correct the cell, or rescale the column (e.g. "
            "divide it by a power of ten)."
        )
    return values[:, None]
