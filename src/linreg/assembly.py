"""A run's pieces built from its config: the trainer with its loggers and callbacks, the model with its optimizer
and schedule; and the checks of the settings that must hold before any of them runs."""

import logging
import warnings
from typing import Any

import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from lightning.pytorch.callbacks import Checkpoint, LearningRateMonitor, ProgressBar
from lightning.pytorch.loggers import Logger
from omegaconf import DictConfig, ListConfig, OmegaConf

from linreg.callbacks import AtomicCheckpointIO
from linreg.classes import named_classes, untrusted
from linreg.config import TrainSettings, checked
from linreg.data import TabularDataModule
from linreg.errors import ConfigError
from linreg.least_squares import LeastSquares
from linreg.model import DataFacts, Regressor
from linreg.runtime import (
    build,
    build_each,
    buildable,
    command_line_overrides,
    refused_settings,
)

log = logging.getLogger(__name__)


# Lightning's keys of an lr_scheduler dictionary, given beside the torch scheduler's own in configs/scheduler/.
SCHEDULER_KEYS = ("interval", "frequency", "monitor")


def build_trainer(cfg: DictConfig, has_validation: bool) -> L.Trainer:
    """The Trainer with the configured loggers and callbacks (and no others of Lightning's choosing)."""
    loggers: list[Logger] = build_each(cfg, "logger")
    callbacks = build_each(cfg, "callbacks")
    if cfg.get("tune"):
        callbacks.append(build(buildable(cfg.tune, "tune", "tune")))
    # Nothing to watch: best.ckpt by val/loss needs a validation split, train/lr a schedule and a logger.
    callbacks = [
        c
        for c in callbacks
        if (has_validation or not str(getattr(c, "monitor", "")).startswith("val/"))
        and ((cfg.get("scheduler") and loggers) or not isinstance(c, LearningRateMonitor))
    ]
    # Checkpoints written under a temporary name and renamed (unless the config brings plugins of its own).
    plugins = {} if "plugins" in cfg.trainer else {"plugins": [AtomicCheckpointIO()]}
    return build(
        cfg.trainer,
        logger=loggers or False,
        callbacks=callbacks,
        enable_progress_bar=any(isinstance(c, ProgressBar) for c in callbacks),
        enable_checkpointing=any(isinstance(c, Checkpoint) for c in callbacks),
        **plugins,
    )


# The command-line keys whose settings the HParams columns every run has already show.
SHOWN_KEYS = (
    *("data", "data.normalize", "data.batch_size", "model", "optimizer", "optimizer.lr", "scheduler", "loss"),
    *("trainer.max_epochs", "seed", "tags"),
)


def log_hyperparameters(
    loggers: list[Logger], cfg: DictConfig, datamodule: TabularDataModule, model: Regressor
) -> None:
    """The settings that tell the runs of a sweep apart, for TensorBoard's HParams tab and hparams.yaml: the usual
    ones, and any other key the command line set (`data.val_fraction`, `trainer.gradient_clip_val`, …)."""
    params = {
        "data": datamodule.name,
        "normalize": datamodule.hparams.normalize,
        "batch_size": cfg.data.batch_size or "full",
        "optimizer": cfg.optimizer._target_.rpartition(".")[2],
        "lr": model.hparams.lr or cfg.optimizer.lr,  # the rate optimizer.lr=auto chose
        "scheduler": cfg.scheduler._target_.rpartition(".")[2] if cfg.get("scheduler") else "none",
        "model": model.net_name,
        "loss": type(model.loss_fn).__name__,
        "max_epochs": cfg.trainer.max_epochs,
        "seed": cfg.seed,
        "tags": ",".join(cfg.get("tags") or []),
    }
    params |= other_overrides(cfg)
    for logger in loggers:
        logger.log_hyperparams(params)


def other_overrides(cfg: DictConfig) -> dict[str, Any]:
    """The command line's other settings, by key: a config group's choice (`experiment`, `debug`), a key's value."""
    overrides = command_line_overrides()
    if overrides is None:
        return {}
    choices, settings = HydraConfig.get().runtime.choices, {}
    for override in overrides:
        key = override.split("=", 1)[0].lstrip("+~")
        value = choices[key] if key in choices else OmegaConf.select(cfg, key)
        if key not in SHOWN_KEYS and value is not None:
            settings[key] = str(OmegaConf.to_container(value)) if isinstance(value, DictConfig | ListConfig) else value
    return settings


def build_datamodule(cfg: DictConfig, **settings: Any) -> TabularDataModule:
    """The data module of `data`, serving float64 rows as the file holds them when training is in float64
    (trainer.precision=64-true), float32 otherwise."""
    datamodule = build(cfg.data, **settings, _convert_="all")  # plain lists: checkpoints hold plain values
    if str(cfg.trainer.get("precision", "32-true")).startswith("64"):
        datamodule.training_dtype = torch.float64
    return datamodule


def build_model(cfg: DictConfig, datamodule: TabularDataModule, least_squares: LeastSquares) -> Regressor:
    """The model sized from the data, carrying the data's normalization so checkpoints predict raw rows (the
    training split's `least_squares` gives `optimizer.lr=auto` its rate)."""
    # The settings the model keeps as plain values, and whose classes its checkpoints will name.
    settings = {
        key: OmegaConf.to_container(cfg[key], resolve=True) if cfg.get(key) else cfg.get(key)
        for key in ("model", "loss", "metrics")
    }
    check_trusted(settings, cfg.trusted_classes)
    optimum = least_squares.penalized(cfg.model.get("l1", 0.0), cfg.model.get("l2", 0.0))
    lr, momentum = automatic_rates(cfg, optimum)
    optimizer = build(cfg.optimizer, **({} if momentum is None else {"momentum": momentum}))
    data = DataFacts(
        feature_names=datamodule.feature_names,
        target_names=datamodule.target_names,
        columns=datamodule.columns,
        normalize=datamodule.hparams.normalize,
        normalize_targets=datamodule.hparams.normalize_targets,
        feature_normalizer=datamodule.feature_normalizer,
        target_normalizer=datamodule.target_normalizer,
    )
    # _partial_: the config gives the model's settings, the data its facts. Not recursive: the net, loss and metrics
    # reach the model as plain settings, which it builds and keeps for its checkpoints.
    model_with_settings = build(cfg.model, _partial_=True, _recursive_=False, _convert_="all")
    try:
        model = model_with_settings(
            data=data,
            loss=settings["loss"],
            metrics=settings["metrics"] or {},
            lr=lr,
            optimizer=optimizer,
            scheduler=lr_scheduler(cfg),
        )
    except TypeError as error:  # a key of model.* that the model does not take
        raise refused_settings(cfg.model, error) from None
    rehearse_loss(cfg, model)
    rehearse_optimizer(cfg, model)
    return model


def check_trusted(settings: dict[str, Any], trusted: list[str]) -> None:
    """Every class the model's settings name can be rebuilt from its checkpoints: this template's, or listed in
    trusted_classes (eval.py, predict.py and export.py rebuild no other)."""
    refused = untrusted(named_classes(settings), trusted)
    if refused:
        listed = ", ".join(refused)
        raise ConfigError(
            f"{listed} is not one of this template's classes, and checkpoints rebuild no other unless it is "
            f"trusted: add it to configs/trusted_classes.yaml (trusted_classes: [{listed}]), so that this run's "
            "checkpoints load in eval.py, predict.py, export.py and a resume."
        )


def rehearse_loss(cfg: DictConfig, model: Regressor) -> None:
    """The loss of a stand-in batch: settings a torch loss refuses only when it is computed (HuberLoss's
    delta=-1) fail here, as one sentence."""
    targets = len(model.data.target_names)
    try:
        model.loss_fn(torch.zeros(2, targets), torch.ones(2, targets))
    except (TypeError, ValueError, RuntimeError) as error:
        raise refused_settings(cfg.loss, error) from None


def rehearse_optimizer(cfg: DictConfig, model: Regressor) -> None:
    """Build the optimizer and schedule on a stand-in weight and take two steps: settings torch refuses only
    once training runs (a negative weight_decay, step_size=0, history_size=0) fail here, as one sentence."""
    weight = torch.zeros(2, requires_grad=True)

    def closure() -> torch.Tensor:  # (a curved valley: L-BFGS needs several iterations, and so its history)
        weight.grad = None
        loss = (1 - weight[0]) ** 2 + 10 * (weight[1] - weight[0] ** 2) ** 2
        loss.backward()
        return loss

    failures = (TypeError, ValueError, ZeroDivisionError, IndexError, RuntimeError)
    try:
        optimizer = model.make_optimizer([weight])
        for _ in range(2):
            optimizer.step(closure)
    except failures as error:
        raise refused_settings(cfg.optimizer, error) from None
    if model.scheduler_config is None:
        return
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # (the stand-in steps its schedule out of Lightning's order)
            schedule = model.make_schedule(optimizer, total_steps=lambda: 10)
            for _ in range(2):
                schedule.step(*([0.0] if isinstance(schedule, torch.optim.lr_scheduler.ReduceLROnPlateau) else []))
    except failures as error:
        raise refused_settings(cfg.scheduler, error) from None


def automatic_rates(cfg: DictConfig, least_squares: LeastSquares) -> tuple[float | None, float | None]:
    """The lr and momentum that `optimizer.lr=auto` and `optimizer.momentum=auto` stand for on this table's loss
    (None: the config's own number). With a number for lr, momentum=auto is 0: plain gradient descent."""
    optimizer = cfg.optimizer
    lr, momentum = optimizer.get("lr"), optimizer.get("momentum")
    if lr != "auto":
        return None, 0.0 if momentum == "auto" else None
    if optimizer._target_ != "torch.optim.SGD":
        raise ConfigError(
            f"optimizer.lr=auto is a step size for gradient descent (optimizer=sgd); "
            f"{optimizer._target_.rpartition('.')[2]} takes a number, e.g. optimizer.lr=0.01."
        )
    net = OmegaConf.select(cfg, "model.net._target_")
    if net != "torch.nn.Linear":
        raise ConfigError(
            f"optimizer.lr=auto is worked out from the curvature of a linear net's loss, and model.net is {net}; "
            "give a number, e.g. optimizer.lr=0.01 (or find one with tune=lr_find)."
        )
    if momentum == "auto":
        lr, momentum = least_squares.heavy_ball()
        log.info(f"optimizer.lr=auto, momentum=auto: {lr:.4g}, {momentum:.4g} (heavy ball, from the loss's curvatures)")
        return lr, momentum
    lr = least_squares.step_size()
    log.info(f"optimizer.lr=auto: {lr:.4g} (1 / the largest curvature of the training loss)")
    return lr, None


def lr_scheduler(cfg: DictConfig) -> dict[str, Any] | None:
    """Lightning's lr_scheduler dictionary: the torch scheduler (still without its optimizer) and when to step it."""
    if not cfg.get("scheduler"):
        return None
    settings = OmegaConf.to_container(cfg.scheduler, resolve=True)
    lightning_keys = {key: settings.pop(key) for key in SCHEDULER_KEYS if key in settings}
    return {"scheduler": build(settings), "name": "train/lr", **lightning_keys}


def check_watched_metrics(cfg: DictConfig, trainer: L.Trainer, model: Regressor, datamodule: TabularDataModule) -> None:
    """optimized_metric and every callback's or schedule's `monitor` name a metric this run has; a misspelt one
    would leave a sweep minimizing NaN, or a callback waiting for a value that never comes."""
    errors = ["loss", *model.val_metrics.keys(keep_base=True)]
    logged = ["train/loss", *(f"val/{name}" for name in errors if len(datamodule.val))]
    verdict = ["train/coefficient_gap", "train/gap_to_ols", "train/converged"] if model.aims_at_least_squares else []
    results = [*logged, *verdict, *(f"test/{name}" for name in errors if len(datamodule.test))]
    watchers = [("optimized_metric", cfg.optimized_metric, results)]
    watchers += [
        (f"the {type(c).__name__} callback's monitor", c.monitor, logged)
        for c in trainer.callbacks
        if isinstance(getattr(c, "monitor", None), str)
    ]
    if model.scheduler_config and model.scheduler_config.get("monitor"):
        watchers.append(("scheduler.monitor", model.scheduler_config["monitor"], logged))
    for who, name, known in watchers:
        if name not in known:
            raise ConfigError(
                f"{who} is {name}, which this run does not have; it has {', '.join(known)}"
                f"{'' if len(datamodule.val) else ' (no val/ metrics: data.val_fraction is 0)'}. Choose one of those."
            )


def check_settings(cfg: DictConfig) -> None:
    """Settings Lightning or PyTorch would reject with a stack trace, or silently run with, explained."""
    checked(cfg, TrainSettings)
    check_devices(cfg.trainer)


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


def check_width(cfg: DictConfig, datamodule: TabularDataModule) -> None:
    """A table wider than statistics.max_features is refused as soon as its columns are known, with the reason:
    every run solves least squares on all of them exactly, at a cost that grows as the cube of their number,
    and keeps its covariance in every checkpoint (5000 features × 300 rows took 56 s on 2 cores, and 200 MB a
    checkpoint)."""
    features, rows = len(datamodule.feature_names), len(datamodule.train)
    limit = cfg.statistics.max_features
    if features <= limit:
        return
    coefficients = features + 1
    too_few = (
        f" Also, its {rows} training rows are fewer than the {coefficients} coefficients, so least squares has no "
        "unique answer."
        if rows <= coefficients
        else ""
    )
    raise ConfigError(
        f"The table gives {features} features (its columns as the model takes them), more than "
        f"statistics.max_features={limit}. Every run solves least squares on them exactly (a {coefficients} × "
        f"{coefficients} system, whose time grows as the cube of the columns) and every checkpoint keeps the "
        f"{features} × {features} covariance ({features * features * 8 / 1e6:.0f} MB).{too_few} Choose the columns "
        f"(data.features=[...] or data.exclude=[...]), or set statistics.max_features={features} to wait for it."
    )
