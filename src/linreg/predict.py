"""predict(cfg): predictions in original units for the raw rows of a table file, from a checkpoint alone."""

import logging
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from omegaconf import DictConfig

from linreg.checkpoints import column_plan, find_checkpoint, load_model
from linreg.config import PredictSettings, checked
from linreg.data.formats import resolve_path
from linreg.data.read import read_with_plan
from linreg.errors import ConfigError

log = logging.getLogger(__name__)


def predict(cfg: DictConfig) -> Path:
    """The job behind scripts/predict.py: the input's cells as they were written, plus one `<target>_predicted`
    column per target, one row per input row in the same order (empty where a blank could not be filled)."""
    settings = checked(cfg, PredictSettings)
    output = Path(settings.output)
    if output.resolve() == resolve_path(settings.input).resolve():
        raise ConfigError(f"output={output} is the input file; choose another output= (the input is only read).")
    if output.exists() and not settings.overwrite:
        raise ConfigError(
            f"output={output} exists already; choose another output= or set overwrite=true to replace it."
        )
    path = find_checkpoint(settings.ckpt_path, settings.log_dir)
    model = load_model(path)
    plan = column_plan(model)
    table, raw = read_with_plan(
        plan, settings.input, "input", with_targets=False, left_out="their predictions are left empty"
    )
    with torch.no_grad():
        predictions = model(table.features)  # normalized inside the model with the checkpoint's own statistics
    rows = np.arange(raw.num_rows) if table.rows is None else table.rows.numpy()
    frame = raw.to_pandas()
    for name, column in zip(model.hparams.target_names, predictions.T, strict=True):
        values = np.full(raw.num_rows, np.nan, dtype=np.float32)
        values[rows] = column.numpy()
        frame[f"{name}_predicted"] = values
    write_atomically(frame, output)
    log.info(f"Predicted {len(frame)} rows of {settings.input} with {path}\nwrote {output}")
    return output


def write_atomically(frame: pd.DataFrame, output: Path) -> None:
    """Write the CSV to a new temporary file beside `output`, then rename it: a reader never sees half a file,
    and no file of the user's is ever taken as the temporary one."""
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        descriptor, name = tempfile.mkstemp(dir=output.parent, prefix=f".{output.name}.", suffix=".partial")
    except OSError as error:
        raise unwritable(output, error) from None
    temporary = Path(name)
    try:
        with os.fdopen(descriptor, "w", newline="") as file:
            frame.to_csv(file, index=False)
        temporary.replace(output)
    except BaseException as error:
        temporary.unlink(missing_ok=True)
        if isinstance(error, OSError):
            raise unwritable(output, error) from None
        raise


def unwritable(output: Path, error: OSError) -> ConfigError:
    return ConfigError(f"output={output} cannot be written ({error.strerror or error}); choose another output=.")
