"""train(cfg): from a composed config to a fitted model, its logs, checkpoints and summary."""

import logging
import math
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.callbacks import Checkpoint, LearningRateMonitor, ProgressBar
from lightning.pytorch.loggers import Logger, TensorBoardLogger
from omegaconf import DictConfig, ListConfig, OmegaConf

from linreg import launchers
from linreg.callbacks import AtomicCheckpointIO, ConvergenceStop, LastCheckpoint
from linreg.checkpoints import resumable_checkpoint
from linreg.classes import named_classes, untrusted
from linreg.config import TrainSettings, checked
from linreg.convergence import TrainingFacts, Verdict, judge
from linreg.data import TabularDataModule
from linreg.errors import ConfigError, RunError, TrainingDiverged
from linreg.least_squares import LeastSquares
from linreg.model import DataFacts, Regressor
from linreg.report import format_equation, format_statistics, format_summary, show_config
from linreg.runtime import (
    as_numbers,
    build,
    build_each,
    buildable,
    lightning_quieted,
    refused_settings,
    writable_directory,
    write_json,
)
from linreg.statistics import VIF_WARNING, FitStatistics, Solution, fit_statistics

log = logging.getLogger(__name__)
# Lightning's keys of an lr_scheduler dictionary, given beside the torch scheduler's own in configs/scheduler/.
SCHEDULER_KEYS = ("interval", "frequency", "monitor")


@dataclass
class FittedRun:
    """What a training run leaves behind, for the summary, the tests and whatever comes after training."""

    model: Regressor
    datamodule: TabularDataModule
    trainer: L.Trainer
    metrics: dict[str, float]
    least_squares: LeastSquares
    verdict: Verdict
    statistics: FitStatistics


def train(cfg: DictConfig) -> float:
    """The job behind scripts/train.py; returns `optimized_metric`, the number a Hydra sweep minimises.

    In a multirun, a job that diverges or fails is recorded as such and returns NaN, so the sweep goes on.
    """
    output_dir, started = writable_directory("output_dir", cfg.output_dir), time.monotonic()
    check_launcher(cfg, output_dir)
    # A sweep prints its overrides once, at its start (linreg.sweeps.SweepSummary); Hydra names each job's.
    shown = "none" if in_multirun() and cfg.print_config == "overrides" else cfg.print_config
    if launchers.rank() == 0:  # (the other processes of a torchrun/srun job say nothing of their own)
        show_config(cfg, output_dir / "config_tree.txt", shown, command_line_overrides())
    from linreg.cross_validation import cross_validate  # (it builds on fit, below)

    try:
        check_settings(cfg)  # (here too, not only in fit: cross-validation reads its settings first)
        folds = cross_validate(cfg) if cfg.get("cv") and cfg.cv.folds else None
        run = folds.refit if folds else fit(cfg)
    except Exception as error:
        status = "diverged" if isinstance(error, TrainingDiverged) else "failed"
        record_status(output_dir, status, f"{type(error).__name__}: {error}", started)
        if not in_multirun():
            raise
        log.error(f"This job {status}: {error}", exc_info=not isinstance(error, RunError))
        return math.nan
    if run is not None and run.trainer.is_global_zero:
        run.statistics.save(output_dir)
        log.info(summarize(run, output_dir, statistics_table=not in_multirun()))
        warn_of_collinearity(run.statistics)
        if run.verdict.converged is False:
            log.warning(f"This run is {run.verdict.sentence()}")
    if folds:  # the folds' means are the run's result; the refit's own metrics are kept beside them
        verdict = folds.verdict(run.verdict.aim if run else "the exact optimum")
        log.info(folds.table())
        extra = {"folds": folds.folds, "metrics_sd": folds.sd, "refit_metrics": run.metrics if run else None}
        record_status(output_dir, "ok", "", started, folds.mean, None, cfg.optimized_metric, verdict, extra)
        return folds.mean.get(cfg.optimized_metric, math.nan)
    epochs = trained_epochs(run.trainer)
    record_status(output_dir, "ok", "", started, run.metrics, epochs, cfg.optimized_metric, run.verdict)
    return run.metrics.get(cfg.optimized_metric, math.nan)


def trained_epochs(trainer: L.Trainer) -> int | None:
    """The epochs trained. Under ddp_spawn this process's trainer did not train, its spawned workers did: their
    count is in the last.ckpt rank 0 wrote, as the fit loop's epochs whose training ended (`epoch` would be one
    short when the last save was at the last epoch's end; None without that checkpoint)."""
    if trainer.current_epoch:
        return trainer.current_epoch
    last = next((c for c in trainer.callbacks if isinstance(c, LastCheckpoint)), None)
    if last is None or not last.path.is_file():
        return None
    loops = torch.load(last.path, map_location="cpu", weights_only=True).get("loops", {})
    return loops.get("fit_loop", {}).get("epoch_progress", {}).get("current", {}).get("processed") or None


def check_launcher(cfg: DictConfig, output_dir: Path) -> None:
    """trainer=ddp only under torchrun or srun, which start its processes; those launchers without a Hydra
    sweep (each process would run the whole sweep); and a run directory the launcher's ids name afresh."""
    started_by = launchers.launcher()
    if cfg.trainer.get("strategy") == "ddp" and started_by is None:
        raise ConfigError(
            'trainer=ddp runs one process per device, started by torchrun or srun (README: "Big tables and '
            'clusters"); on one machine without them use trainer=ddp_spawn (GPUs) or trainer=ddp_sim (CPU).'
        )
    if started_by and in_multirun():
        raise ConfigError(
            f"-m under {started_by}: every process would run the whole sweep, each its own jobs. Launch one "
            "training per torchrun/srun command, or sweep with hydra/launcher=submitit_slurm and trainer=ddp_spawn."
        )
    if started_by and (output_dir / "status.json").exists():
        raise ConfigError(
            f"The run directory {output_dir} holds an earlier run: {started_by} gave this job the same ids as "
            "that one. Give the launcher a new id (torchrun --rdzv-id=<new>) or hydra.run.dir=<new directory>."
        )


def in_multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def command_line_overrides() -> list[str] | None:
    """The overrides the job's config was composed with; None where Hydra did not compose it (the compose API)."""
    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else None


def record_status(
    output_dir: Path,
    status: str,
    message: str,
    started: float,
    metrics: dict[str, float] | None = None,
    epochs: int | None = None,
    objective: str | None = None,
    verdict: Verdict | None = None,
    extra: dict[str, Any] | None = None,
) -> None:
    """status.json in the run directory: how the run ended (ok, diverged, failed) and whether it reached least
    squares (`converged`, `gap_to_ols`; null where that does not apply), for people and sweep summaries; with
    cv.folds, `metrics` are the folds' means, and `extra` holds each fold's, their sd and the refit's. Written by
    rank 0 of a torchrun/srun job only."""
    if launchers.rank() != 0:
        return
    record = {
        "status": status,
        "message": message,
        "converged": verdict.converged if verdict else None,
        "gap_to_ols": verdict.gap if verdict else None,
        "metrics": metrics or {},
        "epochs": epochs,
        "seconds": round(time.monotonic() - started, 3),
        "optimized_metric": objective,
        **(extra or {}),
    }
    write_json(output_dir / "status.json", record)


def fit(cfg: DictConfig, datamodule: TabularDataModule | None = None) -> FittedRun:
    """Build data (unless given, set up), model, loggers, callbacks and trainer from the config, then train and
    test."""
    check_settings(cfg)
    if datamodule is None:
        datamodule = build(cfg.data, _convert_="all")  # plain lists: checkpoints hold plain values
    has_validation = datamodule.holds_out_validation
    if not has_validation and cfg.optimized_metric.startswith("val/"):
        raise ConfigError(
            f"optimized_metric={cfg.optimized_metric} needs a validation split, and data.val_fraction is 0; "
            "hold some rows out (data.val_fraction=0.2) or watch a train/ metric."
        )
    with lightning_quieted():
        trainer = build_trainer(cfg, has_validation)
    if datamodule.train is None:  # read and split now: the model is sized by the table and carries its normalization
        if launchers.launcher():  # the job's processes connect first, as Lightning's fit would: a streamed table's
            trainer.strategy.setup_environment()  # survey is shared out among them (data/stream.py)
        datamodule.setup("fit")
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    resume_from = None
    if cfg.get("ckpt_path"):  # (before the model: a resume with allow_changed_data takes the checkpoint's scale)
        resume_from = resumable_checkpoint(cfg.ckpt_path, datamodule, cfg.get("allow_changed_data", False))
    model = build_model(cfg, datamodule)
    # The exact fit's uncertainty, once: the checkpoints keep what predict.py's intervals need, the end of the
    # run reports its statistics.
    solution = Solution.of(datamodule.least_squares.train_equations, model.feature_normalizer, model.target_normalizer)
    model.intervals.fit(solution)
    with lightning_quieted():
        check_watched_metrics(cfg, trainer, model, datamodule)
        datamodule.check_batch_split(trainer.world_size)
        log_hyperparameters(trainer.loggers, cfg, datamodule, model)
        try:
            trainer.fit(model, datamodule=datamodule, ckpt_path=resume_from, weights_only=True)
        except MisconfigurationException as error:  # a setting Lightning checks only once training starts
            raise ConfigError(f"Lightning refused the settings: {error}") from None
        if cfg.trainer.get("profiler") and trainer.is_global_zero:  # (Lightning only saves it, in fit-profile.txt)
            log.info(trainer.profiler.summary())
        # The weights/ curves are the equation's coefficients: the summary shows them as the equation instead.
        metrics = {k: v for k, v in as_numbers(trainer.callback_metrics).items() if not k.startswith("weights/")}
        verdict = convergence_verdict(cfg, trainer, model, datamodule)
        if verdict.gap is not None:  # the final weights' gap, not that of the last logged step
            metrics |= {"train/gap_to_ols": verdict.gap, "train/converged": float(verdict.converged)}
        if len(datamodule.test):  # (testing replaces the trainer's metrics: keep those of training)
            metrics |= as_numbers(trainer.test(model, datamodule=datamodule, verbose=False)[0])
        trained = model.equation() if model.linear is not None else None
        statistics = fit_statistics(solution, datamodule.train, trained, cfg.statistics.ci)
        for logger in trainer.loggers:  # the statistics in TensorBoard's Text tab
            if isinstance(logger, TensorBoardLogger):  # (indented: Markdown keeps the table's columns)
                table = "\n".join("    " + line for line in format_statistics(statistics).splitlines())
                logger.experiment.add_text("statistics", table, trainer.global_step)
                logger.finalize("success")  # training already closed the file: write it out now, not at exit
    optimum = model.exact_optimum(datamodule.least_squares)
    return FittedRun(model, datamodule, trainer, metrics, optimum, verdict, statistics)


def warn_of_collinearity(statistics: FitStatistics) -> None:
    """Name the features whose separate coefficients the table cannot pin down."""
    collinear = statistics.collinear()
    if not collinear:
        return
    factors = ", ".join(f"{name} {statistics.vif[name]:.3g}" for name in collinear)
    log.warning(
        f"Nearly collinear features (variance inflation factor ≥ {VIF_WARNING:g}): {factors}; the standardized "
        f"condition number is {statistics.condition_number_standardized:.3g}. Each is mostly predictable from the "
        "others, so their separate coefficients are uncertain (see std_error in coefficients.csv) though the "
        "predictions are not. Leave one out (data.exclude=[...]) if the coefficients themselves matter."
    )


def convergence_verdict(
    cfg: DictConfig, trainer: L.Trainer, model: Regressor, datamodule: TabularDataModule
) -> Verdict:
    """How close the final weights came to least squares, and what to change if not close enough."""
    least_squares = model.exact_optimum(datamodule.least_squares)
    if model.linear is None:
        return Verdict(None, cfg.convergence.rtol, why_none=not_linear(model, datamodule, trainer))
    if trainer.overfit_batches:
        return Verdict(None, cfg.convergence.rtol, why_none="trainer.overfit_batches trains on a few batches only")
    gap = least_squares.gap(model.net.weight, model.net.bias) if model.loss_is_mse else None
    stop = next((c for c in trainer.callbacks if isinstance(c, ConvergenceStop)), None)
    optimizer = trainer.optimizers[0] if trainer.optimizers else None  # (none here under ddp_spawn)
    facts = TrainingFacts(
        gaps=stop.gaps if stop else [],
        epochs=trainer.current_epoch,
        steps=trainer.global_step,
        lr=optimizer.defaults.get("lr", math.nan) if optimizer else math.nan,
        optimizer=type(optimizer).__name__ if optimizer else "",
        full_batch=not cfg.data.batch_size or cfg.data.batch_size >= len(datamodule.train),
        scheduled=bool(cfg.get("scheduler")),
        normalize=datamodule.hparams.normalize,
        normalize_targets=datamodule.hparams.normalize_targets,
        largest_coefficient=float(torch.cat([least_squares.weight.flatten(), least_squares.bias]).abs().max()),
        streamed=bool(datamodule.hparams.get("stream")),
    )
    return judge(gap, cfg.convergence.rtol, facts, least_squares.name)


def not_linear(model: Regressor, datamodule: TabularDataModule, trainer: L.Trainer) -> str:
    """Why a net other than one linear layer gets no verdict, and how it compares with least squares instead
    (on the validation rows where there are some, with loss=mse: the same loss in the same units)."""
    why = f"the exact optimum is a linear net's, and model.net is {model.net_name}"
    split = "val" if len(datamodule.val) else "train"
    loss = trainer.callback_metrics.get(f"{split}/loss")
    if not model.loss_is_mse or loss is None:
        return why
    least_squares = datamodule.least_squares
    baseline = least_squares.train_loss
    if split == "val":
        equations = least_squares.equations_of(datamodule.val, model.feature_normalizer, model.target_normalizer)
        baseline = least_squares.objective(least_squares.weight, least_squares.bias, equations)
    return f"{why}; its {split}/loss {float(loss):.4g} against least squares' {baseline:.4g}"


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


def build_model(cfg: DictConfig, datamodule: TabularDataModule) -> Regressor:
    """The model sized from the data, carrying the data's normalization so checkpoints predict raw rows."""
    check_trusted(cfg)
    optimum = datamodule.least_squares.penalized(cfg.model.get("l1", 0.0), cfg.model.get("l2", 0.0))
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
    settings = {"loss": cfg.get("loss"), "metrics": cfg.get("metrics") or {}}
    settings = OmegaConf.to_container(DictConfig(settings), resolve=True)
    try:
        model = model_with_settings(data=data, lr=lr, optimizer=optimizer, scheduler=lr_scheduler(cfg), **settings)
    except TypeError as error:  # a key of model.* that the model does not take
        raise refused_settings(cfg.model, error) from None
    rehearse_optimizer(cfg, model)
    return model


def check_trusted(cfg: DictConfig) -> None:
    """Every class the model's settings name can be rebuilt from its checkpoints: this template's, or listed in
    trusted_classes (eval.py, predict.py and export.py rebuild no other)."""
    settings = {key: cfg.get(key) for key in ("model", "loss", "metrics")}
    refused = untrusted(named_classes(OmegaConf.to_container(DictConfig(settings), resolve=True)), cfg.trusted_classes)
    if refused:
        listed = ", ".join(refused)
        raise ConfigError(
            f"{listed} is not one of this template's classes, and checkpoints rebuild no other unless it is "
            f"trusted: add it to configs/trusted_classes.yaml (trusted_classes: [{listed}]), so that this run's "
            "checkpoints load in eval.py, predict.py, export.py and a resume."
        )


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
    verdict = ["train/gap_to_ols", "train/converged"] if model.linear is not None and model.loss_is_mse else []
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


def summarize(run: FittedRun, output_dir: Path, statistics_table: bool = True) -> str:
    """The end-of-run summary; without `statistics_table` (a sweep's job: one of many on the console) the
    least-squares table is only pointed to (coefficients.csv, statistics.json)."""
    names = run.datamodule.feature_names, run.datamodule.target_names
    least_squares = run.least_squares.equation(run.model.feature_normalizer, run.model.target_normalizer)
    equations = {"trained": format_equation(*run.model.equation(), *names)} if run.model.linear is not None else {}
    equations[run.least_squares.name] = format_equation(*least_squares, *names)
    metrics = {k: v for k, v in run.metrics.items() if k != "train/converged"}  # the verdict says it in words
    metrics["baseline/ols_loss"] = run.least_squares.train_loss
    paths = [Path(c.best_model_path) for c in run.trainer.checkpoint_callbacks if c.best_model_path]
    tensorboard = any(isinstance(logger, TensorBoardLogger) for logger in run.trainer.loggers)
    statistics = (
        format_statistics(run.statistics)
        if statistics_table
        else f"Least-squares statistics: {output_dir / 'coefficients.csv'}, statistics.json"
    )
    return format_summary(metrics, equations, statistics, run.verdict.sentence(), output_dir, paths, tensorboard)
