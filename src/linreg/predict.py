"""predict(cfg): predictions in original units for the rows of a CSV file, from a checkpoint alone."""

import logging
from pathlib import Path

import torch
from omegaconf import DictConfig

from linreg.checkpoints import find_checkpoint, load_model
from linreg.config import PredictSettings, checked
from linreg.data.read import finite_rows, float_tensor, numeric_columns, open_csv
from linreg.errors import ConfigError

log = logging.getLogger(__name__)


def predict(cfg: DictConfig) -> Path:
    """The job behind scripts/predict.py: writes the input columns plus one `<target>_predicted` column per target."""
    settings = checked(cfg, PredictSettings)
    output = Path(settings.output)
    if output.exists() and not settings.overwrite:
        raise ConfigError(
            f"output={output} exists already; choose another output= or set overwrite=true to replace it."
        )
    path = find_checkpoint(settings.ckpt_path, settings.log_dir)
    model = load_model(path)
    frame = open_csv(settings.input, setting="input")
    names = list(model.hparams.feature_names)
    features = float_tensor(finite_rows(numeric_columns(frame, names, settings.input), settings.input))
    with torch.no_grad():
        predictions = model(features)  # normalized inside the model with the checkpoint's own statistics
    for name, column in zip(model.hparams.target_names, predictions.T, strict=True):
        frame[f"{name}_predicted"] = column.numpy()
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(output.name + ".partial")
    frame.to_csv(partial, index=False)
    partial.replace(output)  # a reader never sees half a file
    log.info(f"Predicted {len(frame)} rows of {settings.input} with {path}\nwrote {output}")
    return output
