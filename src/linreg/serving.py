"""Raw rows (text, dates, blanks) as the features an exported model takes, from model.json alone.

scripts/export.py writes this file beside model.onnx: a server that loads the ONNX model needs numpy and
the standard library, not this package, pandas or Arrow. It encodes as predict.py does: the same levels,
fills, date origins and text format, read from model.json's `columns`. Dates are read in ISO 8601
(`2024-03-01`, `2024-03-01T10:30:00+02:00`); a cell that cannot be read raises ValueError naming it.
"""

import math
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

import numpy as np

FLOAT32_MAX = 3.4028234663852886e38
# A date's features unless the plan names others (data.date_parts): days since the earliest training date, month
# (1-12), weekday (0 = Monday).
DATE_PARTS = ("days", "month", "weekday")
# A formula's transforms (data.formula): the function, its inverse (a target's predictions back in its units)
# and where it is defined. The inverse of a log target's prediction is the median of the target, not its mean.
TRANSFORMS = {
    "log": (np.log, np.exp, lambda value: value > 0),
    "log10": (np.log10, lambda value: np.power(10.0, value), lambda value: value > 0),
    "log1p": (np.log1p, np.expm1, lambda value: value > -1),
    "sqrt": (np.sqrt, lambda value: np.square(np.maximum(value, 0)), lambda value: value >= 0),
}


def encode_rows(description: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """The rows (column name → cell, as a CSV reader or a JSON request gives them) as the model's input matrix
    (float32; float64 for a model trained in float64) in the order of description["features"]. A blank the model
    does not fill makes its row NaN, and so its prediction (predict.py leaves those empty)."""
    plan = description["columns"]
    cells = [[encode_cell(entry, row, plan) for entry in plan["features"]] for row in rows]
    blocks = {
        entry["column"]: (kept_names(entry), np.array([row[position] for row in cells]).reshape(len(rows), -1))
        for position, entry in enumerate(plan["features"])
    }
    matrix = plan_features(plan, blocks)[1]
    return matrix.reshape(len(rows), len(description["features"])).astype(description["input"]["dtype"])


def plan_features(
    plan: Mapping[str, Any], blocks: Mapping[str, tuple[list[str], np.ndarray]]
) -> tuple[list[str], np.ndarray]:
    """The model's features from each column's encoded ones: a formula's terms, or the columns' features side by
    side; without those the plan leaves out (`drop`: constant or repeated in the training rows)."""
    if plan.get("formula"):
        names, values = formula_features(plan["formula"], blocks)
    else:
        names = [name for block_names, _ in blocks.values() for name in block_names]
        rows = len(next(iter(blocks.values()))[1]) if blocks else 0
        values = np.concatenate([block for _, block in blocks.values()], axis=1) if blocks else np.zeros((rows, 0))
    dropped = set(plan.get("drop", ()))
    if dropped:
        kept = [position for position, name in enumerate(names) if name not in dropped]
        names, values = [names[position] for position in kept], values[:, kept]
    return names, values


def back_transformed(plan: Mapping[str, Any], predictions: np.ndarray) -> np.ndarray:
    """Predictions in the targets' own units, from the column plan (model.json's `columns`): the inverse of a
    formula's target transform (log(price) → price, the median price). model.onnx applies it already; this is
    for predictions of a model of your own."""
    formula = plan.get("formula")
    if not formula:
        return predictions
    inverses = [TRANSFORMS[target["transform"]][1] if target["transform"] else None for target in formula["targets"]]
    return np.stack([f(column) if f else column for f, column in zip(inverses, predictions.T, strict=True)], axis=1)


def formula_features(
    formula: Mapping[str, Any], blocks: Mapping[str, tuple[list[str], np.ndarray]]
) -> tuple[list[str], np.ndarray]:
    """A formula's features from each column's encoded ones (`blocks`: column → names, rows × features): each
    term is the product of its factors, a categorical factor giving one feature per kept level (`carat:cut=Good`),
    a transformed one a single feature (`np.log(depth)`, `I(carat ** 2)`) of its column's number."""
    names: list[str] = []
    columns: list[np.ndarray] = []
    rows = len(next(iter(blocks.values()))[1]) if blocks else 0
    for term in formula["terms"]:
        term_names, term_values = [""], [np.ones(rows)]
        for factor in term:
            factor_names, factor_values = factor_features(factor, blocks, rows)
            term_names = [f"{a}:{b}" if a else b for a in term_names for b in factor_names]
            term_values = [a * factor_values[:, j] for a in term_values for j in range(factor_values.shape[1])]
        names += term_names
        columns += term_values
    return names, np.stack(columns, axis=1) if columns else np.zeros((rows, 0))


def factor_features(
    factor: Mapping[str, Any], blocks: Mapping[str, tuple[list[str], np.ndarray]], rows: int
) -> tuple[list[str], np.ndarray]:
    """A formula factor's names and values: its column's features as encoded, or one number transformed (none
    where the plan left the column out: its term then gives none either)."""
    names, values = blocks.get(factor["column"], ([], np.zeros((rows, 0))))
    if not names or (not factor["transform"] and not factor["power"]):
        return names, values
    number = values[:, :1]
    if factor["power"]:
        return [factor["name"]], number ** factor["power"]
    function, _, defined = TRANSFORMS[factor["transform"]]
    known = number[~np.isnan(number)]
    outside = known[~defined(known)]
    if len(outside):
        raise ValueError(f"{factor['name']} is undefined where {factor['column']} is {outside[0]:g}")
    return [factor["name"]], function(number)


def encode_cell(entry: Mapping[str, Any], row: Mapping[str, Any], plan: Mapping[str, Any]) -> list[float]:
    """One column's features for one row, without those the plan drops."""
    name, words = entry["column"], plan["words"]
    if name not in row:
        raise ValueError(
            f"a row has no column {name!r}; the model needs {', '.join(e['column'] for e in plan['features'])}"
        )
    cell = row[name]
    if entry["kind"] == "category":
        values = one_hot(entry, cell, words)
    else:
        read = {"number": read_number, "boolean": read_boolean, "date": read_date}[entry["kind"]]
        values = read(entry, cell, plan)
        blank = any(math.isnan(value) for value in values)
        if blank and entry["fill"] is not None:
            values = [fill if math.isnan(value) else value for value, fill in zip(values, entry["fill"], strict=True)]
        if entry["indicator"]:
            values = [*values, float(blank)]
    dropped = entry.get("drop", ())
    return [value for value, feature in zip(values, feature_names(entry), strict=True) if feature not in dropped]


def kept_names(entry: Mapping[str, Any]) -> list[str]:
    """A column's features without those the plan drops (`drop`: constant, repeated or excluded ones)."""
    return [name for name in feature_names(entry) if name not in entry.get("drop", ())]


def feature_names(entry: Mapping[str, Any]) -> list[str]:
    """The features a column becomes, before the plan drops any: `city=Lyon`, `sold.days`, `area.missing`."""
    name = entry["column"]
    if entry["kind"] == "category":
        return [f"{name}={level}" for level in entry["levels"]]
    names = [f"{name}.{part}" for part in entry.get("parts", DATE_PARTS)] if entry["kind"] == "date" else [name]
    return names + ([f"{name}.missing"] if entry["indicator"] else [])


def is_blank(cell: Any, words: Mapping[str, Any]) -> bool:
    return cell is None or (isinstance(cell, float) and math.isnan(cell)) or str(cell).strip().lower() in words["blank"]


def one_hot(entry: Mapping[str, Any], cell: Any, words: Mapping[str, Any]) -> list[float]:
    """A 1 at the cell's level; the reference level and levels training never saw are all zeros."""
    level = words["missing_level"] if is_blank(cell, words) else str(cell).strip()
    if level in entry["rare"] and words["other_level"] in entry["levels"]:
        level = words["other_level"]
    return [float(level == known) for known in entry["levels"]]


def read_number(entry: Mapping[str, Any], cell: Any, plan: Mapping[str, Any]) -> list[float]:
    """A number as data.decimal and data.thousands write it (a thousands separator only in groups of three)."""
    if is_blank(cell, plan["words"]):
        return [math.nan]
    if isinstance(cell, int | float) and not isinstance(cell, bool):
        return [finite(float(cell), entry, cell)]
    text, written = plan["text"], str(cell).strip()
    if text["thousands"] and text["thousands"] in written:
        whole, _, fraction = written.partition(text["decimal"])
        groups = whole.lstrip("+-").split(text["thousands"])
        if not (1 <= len(groups[0]) <= 3 and all(len(group) == 3 for group in groups[1:])):
            raise cannot_read(entry, cell, "a number")
        written = whole.replace(text["thousands"], "") + (text["decimal"] + fraction if fraction else "")
    try:
        return [finite(float(written.replace(text["decimal"], ".")), entry, cell)]
    except ValueError:
        raise cannot_read(entry, cell, "a number") from None


def read_boolean(entry: Mapping[str, Any], cell: Any, plan: Mapping[str, Any]) -> list[float]:
    words = plan["words"]
    if isinstance(cell, bool):
        return [float(cell)]
    if is_blank(cell, words):
        return [math.nan]
    written = str(cell).strip()
    if written in words["true"] or written in words["false"]:
        return [float(written in words["true"])]
    raise cannot_read(entry, cell, "true or false")


def read_date(entry: Mapping[str, Any], cell: Any, plan: Mapping[str, Any]) -> list[float]:
    """The date's parts: days since the training's first date, year, month (1-12), weekday (0 = Monday)."""
    if is_blank(cell, plan["words"]):
        return [math.nan] * len(entry["parts"])
    try:
        moment = cell if isinstance(cell, datetime) else datetime.fromisoformat(str(cell).strip())
    except ValueError:
        raise cannot_read(entry, cell, "an ISO 8601 date (YYYY-MM-DD)") from None
    if moment.tzinfo is not None:  # (in UTC, as training read it)
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    parts = {
        "days": lambda: (moment - datetime.fromisoformat(entry["origin"])).total_seconds() / 86400,
        "year": lambda: float(moment.year),
        "month": lambda: float(moment.month),
        "weekday": lambda: float(moment.weekday()),
    }
    return [parts[part]() for part in entry["parts"]]


def finite(value: float, entry: Mapping[str, Any], cell: Any) -> float:
    if not abs(value) <= FLOAT32_MAX:
        raise cannot_read(entry, cell, "a finite number within the ±3.4e38 of 32-bit floats")
    return value


def cannot_read(entry: Mapping[str, Any], cell: Any, what: str) -> ValueError:
    return ValueError(f"column {entry['column']!r}: {cell!r} is not {what}, as the training rows were")
