"""fit(cfg): one training run, from a composed config to a fitted model, its metrics and its verdict."""

import logging
import math
from dataclasses import dataclass

import lightning as L
import torch
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.loggers import TensorBoardLogger
from omegaconf import DictConfig, OmegaConf

from linreg import launchers
from linreg.assembly import (
    build_datamodule,
    build_model,
    build_trainer,
    check_settings,
    check_watched_metrics,
    check_width,
    log_hyperparameters,
)
from linreg.callbacks import ComparesWithLeastSquares, ConvergenceStop
from linreg.checkpoints import check_same_training, resumable_checkpoint
from linreg.convergence import TrainingFacts, Verdict, judge
from linreg.data import TabularDataModule
from linreg.errors import ConfigError
from linreg.least_squares import LeastSquares, solve_training_sums
from linreg.model import Regressor
from linreg.report import format_statistics
from linreg.runtime import (
    as_numbers,
    lightning_quieted,
)
from linreg.signals import lightning_interruptions
from linreg.statistics import FitStatistics, Solution, fit_statistics

log = logging.getLogger(__name__)


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


def fit(cfg: DictConfig, datamodule: TabularDataModule | None = None) -> FittedRun:
    """Build data (unless given, set up), model, loggers, callbacks and trainer from the config, then train and
    test."""
    check_settings(cfg)
    if datamodule is None:
        datamodule = build_datamodule(cfg)
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
    check_width(cfg, datamodule)
    intercept = fits_intercept(cfg)
    if not intercept:  # a line through the origin: normalizations that keep 0 at 0
        datamodule.fit_normalization(centered=False)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    resume_from = checkpoint = None
    if cfg.get("ckpt_path"):  # (before the model: a resume with allow_changed_data takes the checkpoint's scale)
        resume_from, checkpoint = resumable_checkpoint(cfg.ckpt_path, datamodule, cfg.get("allow_changed_data", False))
    # The run's exact fit, once (from the sums the data's one pass gathered), for the callbacks and reports
    # that compare with it; and its uncertainty: the checkpoints keep what predict.py's intervals need.
    normalizers = datamodule.feature_normalizer, datamodule.target_normalizer
    least_squares = solve_training_sums(datamodule.training_sums, *normalizers, intercept)
    solution = Solution.of(datamodule.training_sums.equations, datamodule.train, intercept)
    least_squares.scale = solution.coefficient_scale(datamodule.feature_names)  # (what the verdict judges by)
    model = build_model(cfg, datamodule, least_squares)
    if checkpoint is not None:
        check_same_training(checkpoint, model)
    model.intervals.fit(solution)
    for callback in trainer.callbacks:
        if isinstance(callback, ComparesWithLeastSquares):
            callback.least_squares = least_squares
    with lightning_quieted():
        check_watched_metrics(cfg, trainer, model, datamodule)
        datamodule.check_batch_split(trainer.world_size)
        log_hyperparameters(trainer.loggers, cfg, datamodule, model)
        try:
            with lightning_interruptions(trainer):
                trainer.fit(model, datamodule=datamodule, ckpt_path=resume_from, weights_only=True)
        except MisconfigurationException as error:  # a setting Lightning checks only once training starts
            raise ConfigError(f"Lightning refused the settings: {error}") from None
        if cfg.trainer.get("profiler") and trainer.is_global_zero:  # (Lightning only saves it, in fit-profile.txt)
            log.info(trainer.profiler.summary())
        # The weights/ curves are the equation's coefficients: the summary shows them as the equation instead.
        metrics = {k: v for k, v in as_numbers(trainer.callback_metrics).items() if not k.startswith("weights/")}
        trained = model.equation() if model.linear is not None else None
        statistics = fit_statistics(solution, datamodule.train, trained, cfg.statistics.ci)
        verdict = convergence_verdict(cfg, trainer, model, datamodule, least_squares, statistics)
        if verdict.gap is not None:  # the final weights' gaps, not those of the last logged step
            optimum = model.exact_optimum(least_squares)
            metrics |= {
                "train/coefficient_gap": verdict.gap,
                "train/gap_to_ols": optimum.gap(*model.linear_map()),
                "train/converged": float(verdict.converged),
            }
        if len(datamodule.test):  # (testing replaces the trainer's metrics: keep those of training)
            with lightning_interruptions(trainer):
                metrics |= as_numbers(trainer.test(model, datamodule=datamodule, verbose=False)[0])
        for logger in trainer.loggers:  # the statistics in TensorBoard's Text tab
            if isinstance(logger, TensorBoardLogger):  # (indented: Markdown keeps the table's columns)
                table = "\n".join("    " + line for line in format_statistics(statistics).splitlines())
                logger.experiment.add_text("statistics", table, trainer.global_step)
                logger.finalize("success")  # training already closed the file: write it out now, not at exit
    optimum = model.exact_optimum(least_squares)
    return FittedRun(model, datamodule, trainer, metrics, optimum, verdict, statistics)


def fits_intercept(cfg: DictConfig) -> bool:
    """Whether the model has an intercept: all but a linear net built without a bias (model.net.bias=false)."""
    linear = OmegaConf.select(cfg, "model.net._target_") == "torch.nn.Linear"
    return not linear or OmegaConf.select(cfg, "model.net.bias", default=True) is not False


def convergence_verdict(
    cfg: DictConfig,
    trainer: L.Trainer,
    model: Regressor,
    datamodule: TabularDataModule,
    fitted: LeastSquares,
    statistics: FitStatistics,
) -> Verdict:
    """How close the final coefficients came to least squares', and what to change if not close enough."""
    least_squares = model.exact_optimum(fitted)
    if model.linear is None:
        return Verdict(None, cfg.convergence.rtol, why_none=not_linear(model, datamodule, trainer, fitted))
    if trainer.overfit_batches:
        return Verdict(None, cfg.convergence.rtol, why_none="trainer.overfit_batches trains on a few batches only")
    gap = model.coefficient_gap(least_squares) if model.loss_is_mse else None
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
        condition_number=statistics.condition_number_standardized,
        precision=str(cfg.trainer.get("precision", "32-true")),
    )
    return judge(gap, cfg.convergence.rtol, facts, least_squares.name)


def not_linear(model: Regressor, datamodule: TabularDataModule, trainer: L.Trainer, least_squares: LeastSquares) -> str:
    """Why a net other than one linear layer gets no verdict, and how it compares with least squares instead
    (on the validation rows where there are some, with loss=mse: the same loss in the same units)."""
    why = f"the exact optimum is a linear net's, and model.net is {model.net_name}"
    split = "val" if len(datamodule.val) else "train"
    loss = trainer.callback_metrics.get(f"{split}/loss")
    if not model.loss_is_mse or loss is None:
        return why
    baseline = least_squares.train_loss
    if split == "val":
        equations = least_squares.equations_of(datamodule.val, model.feature_normalizer, model.target_normalizer)
        baseline = least_squares.objective(least_squares.weight, least_squares.bias, equations)
    return f"{why}; its {split}/loss {float(loss):.4g} against least squares' {baseline:.4g}"
