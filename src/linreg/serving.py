"""Raw rows (text, dates, blanks) as the float32 features an exported model takes, from model.json alone.

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


def encode_rows(description: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """The rows (column name → cell, as a CSV reader or a JSON request gives them) as a float32 matrix in the
    order of description["features"]. A blank the model does not fill makes its row NaN, and so its prediction
    (predict.py leaves those empty)."""
    plan = description["columns"]
    matrix = np.array(
        [[value for entry in plan["features"] for value in encode_cell(entry, row, plan)] for row in rows]
    )
    return matrix.reshape(len(rows), len(description["features"])).astype(np.float32)


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
    names = feature_names(entry)
    return [value for value, feature in zip(values, names, strict=True) if feature not in entry["drop"]]


def feature_names(entry: Mapping[str, Any]) -> list[str]:
    """The features a column becomes, before the plan drops any: `city=Lyon`, `sold.days`, `area.missing`."""
    name = entry["column"]
    if entry["kind"] == "category":
        return [f"{name}={level}" for level in entry["levels"]]
    names = [f"{name}.{part}" for part in entry["parts"]] if entry["kind"] == "date" else [name]
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
