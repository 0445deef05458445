"""train(cfg): from a composed config to a fitted model, its logs, checkpoints and summary."""

import functools
import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from lightning.pytorch.callbacks import Checkpoint, ProgressBar
from lightning.pytorch.loggers import Logger, TensorBoardLogger
from lightning.pytorch.tuner import Tuner
from omegaconf import DictConfig, OmegaConf

from linreg.baseline import LeastSquares, fit_least_squares
from linreg.checkpoints import find_checkpoint
from linreg.data import TabularDataModule
from linreg.errors import ConfigError, RunError, TrainingDiverged, build
from linreg.model import LinearRegressor, lightning_notices_silenced, results
from linreg.plots import save_figure
from linreg.report import format_equation, format_summary, show_config

log = logging.getLogger(__name__)


@dataclass
class FittedRun:
    """What a training run leaves behind, for the summary, the tests and whatever comes after training."""

    model: LinearRegressor
    datamodule: TabularDataModule
    trainer: L.Trainer
    metrics: dict[str, float]
    least_squares: LeastSquares


def train(cfg: DictConfig) -> float:
    """The job behind scripts/train.py; returns `optimized_metric`, the number a Hydra sweep minimises.

    In a multirun, a job that diverges or fails is recorded as such and returns NaN, so the sweep goes on.
    """
    output_dir, started = Path(cfg.output_dir), time.monotonic()
    show_config(cfg, output_dir / "config_tree.txt", print_it=cfg.get("print_config", True))
    try:
        run = fit(cfg)
    except Exception as error:
        status = "diverged" if isinstance(error, TrainingDiverged) else "failed"
        record_status(output_dir, status, f"{type(error).__name__}: {error}", started)
        if not in_multirun():
            raise
        log.error(f"This job {status}: {error}", exc_info=not isinstance(error, RunError))
        return math.nan
    if run.trainer.is_global_zero:
        log.info(summarize(run, output_dir))
    # (Under ddp_spawn the epoch counter stays in the worker processes: recorded as unknown.)
    epochs = run.trainer.current_epoch or None
    record_status(output_dir, "ok", "", started, run.metrics, epochs, cfg.optimized_metric)
    return run.metrics.get(cfg.optimized_metric, math.nan)


def in_multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def record_status(
    output_dir: Path,
    status: str,
    message: str,
    started: float,
    metrics: dict[str, float] | None = None,
    epochs: int | None = None,
    objective: str | None = None,
) -> None:
    """status.json in the run directory: how the run ended (ok, diverged, failed), for people and sweep summaries."""
    record = {
        "status": status,
        "message": message,
        "metrics": metrics or {},
        "epochs": epochs,
        "seconds": round(time.monotonic() - started, 3),
        "optimized_metric": objective,
    }
    (output_dir / "status.json").write_text(json.dumps(record, indent=1) + "\n")


def fit(cfg: DictConfig) -> FittedRun:
    """Build data, model, loggers, callbacks and trainer from the config, then train and test."""
    check_settings(cfg)
    datamodule: TabularDataModule = build(cfg.data)
    has_validation = len(datamodule.val) > 0
    if not has_validation:
        cfg.optimized_metric = cfg.optimized_metric.replace("val/", "train/")
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    model = build_model(cfg, datamodule)
    least_squares, ols_losses = least_squares_baseline(datamodule)
    if model.hparams.loss == "mse":  # the optimum of this loss: the model logs its distance to it
        model.least_squares_loss = ols_losses
    trainer = build_trainer(cfg, has_validation)
    datamodule.check_batch_split(trainer.world_size)

    with lightning_notices_silenced():
        if cfg.get("tune"):
            find_learning_rate(trainer, model, datamodule, cfg.tune, Path(cfg.output_dir) / "plots")
        log_hyperparameters(trainer.loggers, cfg, datamodule)
        baseline = {"baseline/ols_loss": ols_losses["train"]}
        if "val" in ols_losses:
            baseline["baseline/ols_val_loss"] = ols_losses["val"]
        for logger in trainer.loggers:
            logger.log_metrics(baseline, step=0)
        resume_from = find_checkpoint(cfg.ckpt_path) if cfg.get("ckpt_path") else None
        trainer.fit(model, datamodule=datamodule, ckpt_path=resume_from, weights_only=True)
        metrics = results(trainer.callback_metrics)
        if len(datamodule.test):  # (testing replaces the trainer's metrics: keep those of training)
            metrics |= results(trainer.test(model, datamodule=datamodule, verbose=False)[0])
        for logger in trainer.loggers:  # the results of the HParams tab
            logger.log_metrics({final_name(name): value for name, value in metrics.items()}, step=trainer.global_step)
            logger.finalize("success")  # training already closed the files: write these out now, not at exit
    return FittedRun(model, datamodule, trainer, metrics, least_squares)


def build_trainer(cfg: DictConfig, has_validation: bool) -> L.Trainer:
    """The Trainer with the configured loggers and callbacks (and no others of Lightning's choosing)."""
    loggers: list[Logger] = [build(c) for c in (cfg.get("logger") or {}).values()]
    callbacks = [build(c) for c in (cfg.get("callbacks") or {}).values() if c]
    if not has_validation:  # nothing to watch: best.ckpt by val/loss needs a validation split
        callbacks = [c for c in callbacks if not str(getattr(c, "monitor", "")).startswith("val/")]
    return build(
        cfg.trainer,
        logger=loggers or False,
        callbacks=callbacks,
        enable_progress_bar=any(isinstance(c, ProgressBar) for c in callbacks),
        enable_checkpointing=any(isinstance(c, Checkpoint) for c in callbacks),
    )


def find_learning_rate(
    trainer: L.Trainer, model: LinearRegressor, datamodule: TabularDataModule, tune: DictConfig, plots: Path
) -> float:
    """Lightning's learning-rate finder: report its suggestion, save its plot, and use it if `tune.apply`."""
    batches_per_call, datamodule.batches_per_call = datamodule.batches_per_call, 1  # one lr tried per call
    try:
        finder = Tuner(trainer).lr_find(
            model,
            datamodule=datamodule,
            min_lr=tune.min_lr,
            max_lr=tune.max_lr,
            num_training=tune.num_training,
            update_attr=False,
        )
    finally:
        datamodule.batches_per_call = batches_per_call
    suggestion = finder.suggestion()
    if suggestion is None:
        raise ConfigError("tune=lr_find found no learning rate: the loss never fell. Widen tune.min_lr/tune.max_lr.")
    save_figure(finder.plot(suggest=True), "lr_find", plots, trainer)
    if tune.apply:  # the optimizer config's lr, replaced for this run
        model.optimizer_factory = functools.partial(model.optimizer_factory, lr=suggestion)
    log.info(
        f"lr_find suggests lr={suggestion:.3g}"
        + (" (used: tune.apply=true)" if tune.apply else " (tune.apply=true to use it)")
    )
    return suggestion


def log_hyperparameters(loggers: list[Logger], cfg: DictConfig, datamodule: TabularDataModule) -> None:
    """The settings that tell the runs of a sweep apart, for TensorBoard's HParams tab and hparams.yaml."""
    params = {
        "data": datamodule.name,
        "normalize": datamodule.normalize,
        "batch_size": cfg.data.batch_size or "full",
        "optimizer": cfg.optimizer._target_.rpartition(".")[2],
        "lr": cfg.optimizer.lr,
        "scheduler": cfg.scheduler._target_.rpartition(".")[2] if cfg.get("scheduler") else "none",
        "loss": cfg.model.loss,
        "max_epochs": cfg.trainer.max_epochs,
        "seed": cfg.seed,
        "tags": ",".join(cfg.get("tags") or []),
    }
    # The tab shows each metric's last value: NaN until the run logs its result at the end.
    names = ["train/loss"] + [
        f"{split}/{metric}"
        for split in ("val", "test")
        if len(getattr(datamodule, split))
        for metric in ("loss", "mse", "mae", "r2")
    ]
    for logger in loggers:
        if isinstance(logger, TensorBoardLogger):
            logger.log_hyperparams(params, metrics={final_name(name): math.nan for name in names})
        else:
            logger.log_hyperparams(params)


def final_name(metric: str) -> str:
    """`final/val_r2` for `val/r2`: tags of their own, so the real curves get no extra point."""
    return "final/" + metric.replace("/", "_")


def least_squares_baseline(datamodule: TabularDataModule) -> tuple[LeastSquares, dict[str, float]]:
    """The exact least-squares fit of the training split and its MSE per split (train, and val if any)."""
    normalizers = datamodule.feature_normalizer, datamodule.target_normalizer
    least_squares = fit_least_squares(datamodule.train, *normalizers)
    losses = {"train": least_squares.train_loss}
    if len(datamodule.val):
        losses["val"] = least_squares.loss_on(datamodule.val, *normalizers)
    return least_squares, losses


def build_model(cfg: DictConfig, datamodule: TabularDataModule) -> LinearRegressor:
    """The model sized from the data, carrying the data's normalization so checkpoints predict raw rows."""
    scheduler = build(cfg.scheduler) if cfg.get("scheduler") else None
    # _partial_: the config gives the model's settings, the data its shape and normalization.
    model_with_settings = build(cfg.model, _partial_=True, _convert_="all")
    return model_with_settings(
        feature_names=datamodule.feature_names,
        target_names=datamodule.target_names,
        normalize=datamodule.normalize,
        feature_normalizer=datamodule.feature_normalizer,
        target_normalizer=datamodule.target_normalizer,
        optimizer=build(cfg.optimizer),
        scheduler=scheduler,
        scheduler_monitor=cfg.optimized_metric,
        # How the data was read and split: eval.py rebuilds the same test split from the checkpoint.
        data_config=OmegaConf.to_container(cfg.data, resolve=True),
    )


def check_settings(cfg: DictConfig) -> None:
    """Settings Lightning or PyTorch would reject with a stack trace, or silently run with, explained."""
    check_devices(cfg.trainer)
    max_epochs, max_steps = cfg.trainer.get("max_epochs"), cfg.trainer.get("max_steps", -1)
    if max_epochs is not None and max_epochs <= 0 and max_steps == -1:
        raise ConfigError(
            f"trainer.max_epochs={cfg.trainer.max_epochs}: train for at least one epoch (or set trainer.max_steps)."
        )
    # The model takes its optimizer steps itself (several per Lightning step), where these do not apply.
    if cfg.trainer.get("gradient_clip_val") is not None:
        raise ConfigError(
            f"trainer.gradient_clip_val={cfg.trainer.gradient_clip_val}: this template clips in the model; "
            f"set model.gradient_clip_val={cfg.trainer.gradient_clip_val} instead."
        )
    if cfg.trainer.get("accumulate_grad_batches", 1) != 1:
        raise ConfigError(
            f"trainer.accumulate_grad_batches={cfg.trainer.accumulate_grad_batches}: this template takes one "
            "optimizer step per batch; for the gradient of k batches at once, multiply data.batch_size by k."
        )
    if cfg.optimizer.get("lr", 1) <= 0:
        raise ConfigError(f"optimizer.lr={cfg.optimizer.lr}: the learning rate must be above 0, e.g. 0.01.")


def check_devices(trainer_cfg: DictConfig) -> None:
    """Fail with a sentence, not a stack trace, when the GPUs asked for are not there."""
    if str(trainer_cfg.get("accelerator")).lower() not in ("gpu", "cuda"):
        return
    available = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if available == 0:
        raise ConfigError(
            "trainer.accelerator=gpu asks for a CUDA GPU, but PyTorch sees none on this machine. "
            "Train on the CPU with trainer=cpu (or trainer.accelerator=cpu), or check the driver with nvidia-smi."
        )
    devices = trainer_cfg.get("devices")
    if isinstance(devices, int) and devices > available:
        raise ConfigError(
            f"trainer.devices={devices} asks for more GPUs than the {available} PyTorch sees; "
            f"use trainer.devices={available} or fewer (-1 takes all)."
        )


def summarize(run: FittedRun, output_dir: Path) -> str:
    names = run.datamodule.feature_names, run.datamodule.target_names
    least_squares = run.least_squares.equation(run.datamodule.feature_normalizer, run.datamodule.target_normalizer)
    equations = {
        "trained": format_equation(*run.model.equation(), *names),
        "least squares": format_equation(*least_squares, *names),
    }
    metrics = {**run.metrics, "baseline/ols_loss": run.least_squares.train_loss}
    paths = [Path(c.best_model_path) for c in run.trainer.checkpoint_callbacks if c.best_model_path]
    return format_summary(metrics, equations, output_dir, paths)
