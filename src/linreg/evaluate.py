"""evaluate(cfg): the metrics of a saved checkpoint, on a split of its own data or on a table file."""

import logging

import lightning as L
from omegaconf import DictConfig

from linreg.checkpoints import column_plan, find_checkpoint, load_datamodule, load_model, read_checkpoint
from linreg.config import EvalSettings, checked
from linreg.data import InMemoryDataModule, TabularDataModule, read_with_plan
from linreg.errors import ConfigError
from linreg.runtime import as_numbers, build_each, lightning_quieted

log = logging.getLogger(__name__)


def evaluate(cfg: DictConfig) -> dict[str, float]:
    """The job behind scripts/eval.py: metrics named by the split (`test/…`, `val/…`, `train/…`; `test/…` for
    input=), equal to those train.py reports for the same weights."""
    settings = checked(cfg, EvalSettings)
    path = find_checkpoint(settings.ckpt_path, settings.log_dir)
    checkpoint = read_checkpoint(path)
    model = load_model(path, checkpoint, settings.trusted_classes)
    if settings.input:  # every row of the file, encoded as in training
        plan = column_plan(model)
        table, _ = read_with_plan(plan, settings.input, "input", with_targets=True, left_out="they are not scored")
        datamodule: TabularDataModule = InMemoryDataModule(table, val_fraction=0, normalize="none")
        datamodule.setup("test")
        split, source = "train", settings.input
        label = "test"  # rows the model was not trained on, as far as eval can tell
    else:
        datamodule = load_datamodule(path, checkpoint)
        split = settings.split.name if settings.split else first_split(datamodule)
        source, label = f"the {split} split of {datamodule.name}", split
    rows = getattr(datamodule, split)
    if not len(rows):
        raise ConfigError(
            f"The checkpoint's run has no {split} split (data.{split}_fraction was 0); "
            "choose another split= or give input=<CSV file>."
        )
    model.test_metrics.prefix = f"{label}/"  # (scored through Lightning's test loop, named by the split)
    loggers = build_each(cfg, "logger")
    with lightning_quieted():
        trainer = L.Trainer(
            accelerator="cpu",
            logger=loggers or False,
            enable_progress_bar=False,
            enable_checkpointing=False,
            enable_model_summary=False,
        )
        metrics = as_numbers(trainer.test(model, dataloaders=datamodule.loader(split), verbose=False)[0])
    lines = [f"Checkpoint {path}", f"evaluated on {source} ({len(rows)} rows):"]
    log.info("\n".join(lines + [f"  {name:<10} {value:.6g}" for name, value in sorted(metrics.items())]))
    return metrics


def first_split(datamodule: TabularDataModule) -> str:
    """The held-out split a run has, test first; the training rows when it held none out."""
    return next(split for split in ("test", "val", "train") if len(getattr(datamodule, split)))
