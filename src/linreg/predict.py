"""predict(cfg): predictions in original units for the raw rows of a table file, from a checkpoint alone."""

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from omegaconf import DictConfig

from linreg.checkpoints import column_plan, find_checkpoint, load_model
from linreg.config import PredictSettings, checked
from linreg.data.formats import PARQUET_SUFFIXES, TextFormat, describe_row, empty_lines, resolve_path, separator_of
from linreg.data.read import read_with_plan
from linreg.errors import ConfigError
from linreg.model import Regressor
from linreg.runtime import cannot_write, check_replaceable, replaced_atomically, write_atomically
from linreg.serving import back_transformed

log = logging.getLogger(__name__)
OUTPUT_SUFFIXES = ("", ".csv", ".txt", ".tsv", *PARQUET_SUFFIXES)


def predict(cfg: DictConfig) -> Path:
    """The job behind scripts/predict.py: the input's cells as they were written, plus one `<target>_predicted`
    column per target (and `<target>_lower`, `<target>_upper` with `interval=`), one row per input row in the
    same order (empty where a blank could not be filled)."""
    settings = checked(cfg, PredictSettings)
    output = Path(settings.output)
    if output.is_dir():
        raise ConfigError(f"output={output} is a folder; give a file in it, e.g. output={output / 'predictions.csv'}.")
    path = find_checkpoint(settings.ckpt_path, settings.log_dir)
    read = {"input file": Path(resolve_path(settings.input)), "checkpoint": path}
    check_replaceable("output", output, settings.overwrite, read)
    if output.suffix.lower() not in OUTPUT_SUFFIXES:
        raise ConfigError(
            f"output={output}: predict.py writes CSV (.csv, .txt, or .tsv with tabs) or Parquet (.parquet, .pq), "
            f"not {output.suffix}; give one of those names."
        )
    model = load_model(path, trusted=settings.trusted_classes)
    plan = column_plan(model)
    table, raw = read_with_plan(
        plan, settings.input, "input", with_targets=False, left_out="their predictions are left empty"
    )
    check_output_names(raw.column_names, plan["targets"], settings.interval is not None, settings.input)
    with torch.no_grad():
        predictions = model(table.features)  # normalized inside the model with the checkpoint's own statistics
    rows = np.arange(raw.num_rows) if table.rows is None else table.rows.numpy()
    predictions = without_overflow(predictions, rows, settings.input)
    columns = {"predicted": predictions}
    if settings.interval is not None:
        half_width = interval_half_width(model, table.features, settings.interval, path)
        columns |= {"lower": predictions - half_width, "upper": predictions + half_width}
    frame = raw.to_pandas()
    for suffix, values in columns.items():
        values = back_transformed(plan, values.numpy())  # (a formula's np.log(price): price)
        for name, column in zip(plan["targets"], values.T, strict=True):
            cells = np.full(raw.num_rows, np.nan, dtype=np.float32)
            cells[rows] = column
            frame[f"{name}_{suffix}"] = cells
    say_back_transform(plan)
    write_table(frame, output, *output_marks(settings, plan))
    log.info(f"Predicted {len(frame)} rows of {settings.input} with {path}\nwrote {output}")
    skipped = empty_lines(settings.input)
    if skipped:
        shown = ", ".join(map(str, skipped[:5])) + (", …" if len(skipped) > 5 else "")
        log.warning(
            f"{len(skipped)} empty line(s) of {settings.input} (line {shown}) have no row in {output}: the CSV "
            "reader skips empty lines, so the output has one row for each of the other lines, in their order."
        )
    return output


def say_back_transform(plan: dict) -> None:
    """How a transformed target's predictions came back to its units, where they did."""
    transformed = [target for target in (plan.get("formula") or {}).get("targets", []) if target["transform"]]
    for target in transformed:
        log.info(
            f"{target['column']}_predicted is {target['name']} predicted, transformed back: the median of "
            f'{target["column"]} given the features, below its mean (docs/real-tables.md: "Formulas").'
        )


def check_output_names(columns: list[str], targets: list[str], interval: bool, source: str) -> None:
    """The columns predict.py adds are none of the input's: one would be replaced without a word."""
    suffixes = ("predicted", "lower", "upper") if interval else ("predicted",)
    taken = [f"{target}_{suffix}" for suffix in suffixes for target in targets if f"{target}_{suffix}" in columns]
    if taken:
        raise ConfigError(
            f"input={source} has a column {', '.join(taken)} already, the name of a column predict.py adds; rename "
            "it in the file (or give a file without it), so that neither is lost."
        )


def without_overflow(predictions: torch.Tensor, rows: np.ndarray, source: str) -> torch.Tensor:
    """The predictions, with those beyond float32's range (inputs far outside the training data) left empty and
    their lines named, instead of written as inf."""
    overflowed = (~torch.isfinite(predictions)).any(dim=1)
    if overflowed.any():
        where = [describe_row(int(rows[i]), source) for i in overflowed.nonzero().flatten()[:5].tolist()]
        log.warning(
            f"{int(overflowed.sum())} row(s) of {source} ({', '.join(where)}) give predictions beyond the ±3.4e38 of "
            "32-bit numbers: their inputs lie far outside the training data. Their predictions are left empty."
        )
        predictions = predictions.masked_fill(overflowed[:, None], float("nan"))
    return predictions


def interval_half_width(model: Regressor, features: torch.Tensor, level: float, path: Path) -> torch.Tensor:
    """How far each row's bounds lie from its prediction: from the least-squares covariance in the checkpoint,
    which describes a linear net's predictions only."""
    if model.linear is None:
        raise ConfigError(
            f"interval={level}: the intervals are those of least squares, which describe a linear net, and {path} "
            f"holds a net of class {model.net_name}; leave interval= out (or train with model=linear)."
        )
    if float(model.intervals.rows) == 0:
        raise ConfigError(
            f"interval={level}: {path} was written before checkpoints kept what intervals need; "
            "train again (scripts/train.py) and predict with the new checkpoint."
        )
    if not float(model.intervals.df_resid) > 0:
        raise ConfigError(
            f"interval={level}: the model was trained on {int(model.intervals.rows)} rows, too few to estimate the "
            "noise around its fit (as many rows as coefficients or fewer); train on more rows."
        )
    return model.intervals.half_width(features, level).float()


def output_marks(settings: PredictSettings, plan: dict) -> tuple[str, str]:
    """The delimiter and decimal mark of a CSV output: as set (sep=, decimal=), else tabs for .tsv and the
    input's own (a `;` file with decimal commas gets one back), else `,` and `.`."""
    text = TextFormat(**plan["text"])
    if settings.sep:
        separator = settings.sep
    elif Path(settings.output).suffix.lower() == ".tsv":
        separator = "\t"
    else:
        separator = separator_of(settings.input, text) or ","
    decimal = settings.decimal or text.decimal
    if decimal == separator:
        raise ConfigError(
            f"predict.py would write {decimal!r} both between fields and as the decimal mark; set sep= or decimal= "
            "to another character (e.g. sep=';')."
        )
    return separator, decimal


def write_table(frame: pd.DataFrame, output: Path, separator: str = ",", decimal: str = ".") -> None:
    """The predictions as the output's name says (Parquet, or delimited text with `separator` and `decimal`),
    written atomically (never half a file, never over a file of the user's by accident)."""
    try:
        if output.suffix.lower() in PARQUET_SUFFIXES:
            with replaced_atomically(output) as temporary:
                frame.to_parquet(temporary, index=False)
        else:
            write_atomically(output, lambda file: frame.to_csv(file, index=False, sep=separator, decimal=decimal))
    except OSError as error:
        raise cannot_write("output", output, error) from None
