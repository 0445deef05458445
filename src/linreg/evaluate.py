"""evaluate(cfg): the test metrics of a saved checkpoint, on its own data's split or on a CSV file."""

import logging

import lightning as L
from omegaconf import DictConfig

from linreg.checkpoints import find_checkpoint, load_model
from linreg.data import TabularDataModule
from linreg.errors import ConfigError, build
from linreg.model import LinearRegressor, lightning_notices_silenced, results

log = logging.getLogger(__name__)
SPLITS = ("test", "val", "train")


def evaluate(cfg: DictConfig) -> dict[str, float]:
    """The job behind scripts/eval.py: `test/…` metrics equal to those train.py reports for the same weights."""
    path = find_checkpoint(cfg.ckpt_path, cfg.log_dir)
    model = load_model(path)
    datamodule = evaluation_data(model, cfg.split, cfg.input)
    loggers = [build(c) for c in (cfg.get("logger") or {}).values()]
    trainer = L.Trainer(
        accelerator="cpu",
        logger=loggers or False,
        enable_progress_bar=False,
        enable_checkpointing=False,
        enable_model_summary=False,
    )
    with lightning_notices_silenced():
        metrics = results(trainer.test(model, datamodule=datamodule, verbose=False)[0])
    source = cfg.input or f"the {cfg.split} split of {datamodule.name}"
    lines = [f"Checkpoint {path}", f"evaluated on {source} ({len(datamodule.test)} rows):"]
    log.info("\n".join(lines + [f"  {name:<10} {value:.6g}" for name, value in sorted(metrics.items())]))
    return metrics


def evaluation_data(model: LinearRegressor, split: str, input_csv: str | None) -> TabularDataModule:
    """A data module whose test split holds the rows to evaluate on."""
    if input_csv:  # every row of the file
        datamodule = TabularDataModule.from_csv(
            input_csv,
            targets=model.hparams.target_names,
            features=model.hparams.feature_names,
            val_fraction=0,
            normalize="none",
        )
        split = "train"
    elif split not in SPLITS:
        raise ConfigError(
            f"split={split!r} is not a split; choose one of {', '.join(SPLITS)}, or give input=<CSV file>."
        )
    elif not model.hparams.data_config:
        raise ConfigError("This checkpoint does not record its data; give input=<CSV file> to evaluate on.")
    else:
        datamodule = build(model.hparams.data_config)
    datamodule.test = getattr(datamodule, split)
    if len(datamodule.test) == 0:
        raise ConfigError(
            f"The checkpoint's run has no {split} split (data.{split}_fraction was 0); "
            "choose another split= or give input=<CSV file>."
        )
    return datamodule
