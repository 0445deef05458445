"""train(cfg): from a composed config to a fitted model, its logs, checkpoints and summary."""

import logging
import math
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from omegaconf import DictConfig

from linreg import launchers
from linreg.assembly import check_settings
from linreg.callbacks import LastCheckpoint
from linreg.convergence import Verdict
from linreg.cross_validation import cross_validate
from linreg.errors import ConfigError, Interrupted, RunError, TrainingDiverged
from linreg.fit import FittedRun, fit
from linreg.report import format_equation, format_statistics, format_summary, show_config
from linreg.runtime import (
    command_line_overrides,
    in_multirun,
    writable_directory,
    write_json,
)
from linreg.signals import console_outlives_reader, interruptible, resume_command
from linreg.statistics import VIF_WARNING, FitStatistics

log = logging.getLogger(__name__)
SHOWN_COLLINEAR = 10  # the collinear features the warning names; coefficients.csv has them all


def train(cfg: DictConfig) -> float:
    """The job behind scripts/train.py; returns `optimized_metric`, the number a Hydra sweep minimises.

    In a multirun, a job that diverges or fails is recorded as such and returns NaN, so the sweep goes on; an
    interrupted job (Ctrl-C, SIGTERM) is recorded with the command that resumes it, and ends the sweep.
    """
    output_dir, started = writable_directory("output_dir", cfg.output_dir), time.monotonic()
    try:
        with interruptible(), console_outlives_reader():
            return train_into(cfg, output_dir, started)
    except Interrupted as stop:
        record_interruption(stop, cfg, output_dir, started)
        raise


def train_into(cfg: DictConfig, output_dir: Path, started: float) -> float:
    check_launcher(cfg, output_dir)
    # A sweep prints its overrides once, at its start (linreg.sweeps.SweepSummary); Hydra names each job's.
    shown = "none" if in_multirun() and cfg.print_config == "overrides" else cfg.print_config
    if launchers.rank() == 0:  # (the other processes of a torchrun/srun job say nothing of their own)
        show_config(cfg, output_dir / "config_tree.txt", shown, command_line_overrides())
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


def record_interruption(stop: Interrupted, cfg: DictConfig, output_dir: Path, started: float) -> None:
    """Say, on the console and in status.json (`status: interrupted`, `resume`), what was saved and how to go on."""
    saving = (cfg.get("callbacks") or {}).get("last_checkpoint")  # (the config's name for LastCheckpoint)
    last = Path(saving.dirpath) / "last.ckpt" if saving else None
    resume = resume_command(last) if last and last.is_file() else None
    if resume:
        message = f"{stop} {last} holds the weights then; go on with:\n  {resume}"
    elif last and last.is_file():  # (a job Hydra did not start: its command is not known)
        message = f"{stop} {last} holds the weights then; go on with this job's settings and ckpt_path={last}."
    else:
        message = f"{stop} No checkpoint was saved; run the command again to train."
    record_status(output_dir, "interrupted", message, started, extra={"resume": resume})
    if launchers.rank() == 0:
        log.warning(message)


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
            "trainer=ddp runs one process per device, started by torchrun or srun "
            '(docs/scaling.md: "Big tables and clusters"); on one machine without them use trainer=ddp_spawn (GPUs) '
            "or trainer=ddp_sim (CPU)."
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
    """status.json in the run directory: how the run ended (ok, diverged, failed, interrupted) and whether it
    reached least squares (`converged`, `coefficient_gap`; null where that does not apply), for people and sweeps; with
    cv.folds, `metrics` are the folds' means, and `extra` holds each fold's, their sd and the refit's. Written by
    rank 0 of a torchrun/srun job only."""
    if launchers.rank() != 0:
        return
    record = {
        "status": status,
        "message": message,
        "converged": verdict.converged if verdict else None,
        "coefficient_gap": verdict.gap if verdict else None,
        "metrics": metrics or {},
        "epochs": epochs,
        "seconds": round(time.monotonic() - started, 3),
        "optimized_metric": objective,
        **(extra or {}),
    }
    write_json(output_dir / "status.json", record)


def warn_of_collinearity(statistics: FitStatistics) -> None:
    """Name the features whose separate coefficients the table cannot pin down."""
    if statistics.aliased:
        named = "; ".join(f"{name} is {why}" for name, why in statistics.aliased.items())
        log.warning(
            f"Least squares cannot tell some features from the others: {named}. They get no coefficient (empty "
            "cells in coefficients.csv, as R's NA) and the degrees of freedom count the others; leave them out "
            f"(data.exclude=[{','.join(statistics.aliased)}]) to fit the same model without them."
        )
    collinear = statistics.collinear()
    if not collinear:
        return
    factors = ", ".join(f"{name} {statistics.vif[name]:.3g}" for name in collinear[:SHOWN_COLLINEAR])
    if len(collinear) > SHOWN_COLLINEAR:
        factors += f" and {len(collinear) - SHOWN_COLLINEAR} more (statistics.json has every vif)"
    log.warning(
        f"Nearly collinear features (variance inflation factor ≥ {VIF_WARNING:g}): {factors}; the standardized "
        f"condition number is {statistics.condition_number_standardized:.3g}. Each is mostly predictable from the "
        "others, so their separate coefficients are uncertain (see std_error in coefficients.csv) though the "
        "predictions are not. Leave one out (data.exclude=[...]) if the coefficients themselves matter."
    )


def summarize(run: FittedRun, output_dir: Path, statistics_table: bool = True) -> str:
    """The end-of-run summary; without `statistics_table` (a sweep's job: one of many on the console) the
    least-squares table is only pointed to (coefficients.csv, statistics.json)."""
    names = run.datamodule.feature_names, run.datamodule.target_names
    least_squares = (  # (the unpenalized one as coefficients.csv has it: the statistics' own solution)
        run.statistics.equation()
        if run.least_squares.name == "least squares"
        else run.least_squares.equation(run.model.feature_normalizer, run.model.target_normalizer)
    )
    intercept = run.least_squares.intercept
    equations = (
        {"trained": format_equation(*run.model.equation(), *names, intercept)} if run.model.linear is not None else {}
    )
    equations[run.least_squares.name] = format_equation(*least_squares, *names, intercept)
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
