"""cv.folds=K: K runs, each validated on one fold of the training rows, and their mean for Hydra's sweepers."""

import copy
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, open_dict

from linreg.assembly import build_datamodule
from linreg.convergence import Verdict
from linreg.data import TabularDataModule
from linreg.errors import ConfigError
from linreg.fit import FittedRun, fit
from linreg.report import format_number

# The columns of the summary's fold table (the optimized metric first), where the runs have them.
SHOWN = ("val/loss", "val/r2", "val/mae", "train/loss", "train/coefficient_gap", "test/loss", "test/r2")


@dataclass
class CrossValidation:
    """The metrics of each fold's run, and the refit on all the training rows (cv.refit=true)."""

    folds: list[dict[str, float]]
    refit: FittedRun | None
    objective: str  # optimized_metric
    rtol: float  # convergence.rtol
    # Each metric's mean over the folds (what status.json, the sweep summary and the sweeper get), and its
    # standard deviation (sample, n − 1).
    mean: dict[str, float] = field(init=False)
    sd: dict[str, float] = field(init=False)

    def __post_init__(self) -> None:
        shared = [name for name in self.folds[0] if all(name in fold for fold in self.folds)]
        values = {name: np.array([fold[name] for fold in self.folds], dtype=np.float64) for name in shared}
        # (NaN where a fold's metric is: R² of a one-row fold. statistics.stdev fails on NaN.)
        self.mean = {name: float(column.mean()) for name, column in values.items()}
        self.sd = {name: float(column.std(ddof=1)) for name, column in values.items()}

    def verdict(self, aim: str) -> Verdict:
        """Converged when every fold's run reached its exact optimum: judged by the largest gap."""
        gaps = [fold.get("train/coefficient_gap") for fold in self.folds]
        if any(gap is None for gap in gaps):
            return Verdict(None, self.rtol, aim=aim)
        return Verdict(max(gaps), self.rtol, aim=aim)

    def table(self) -> str:
        """The folds' metrics, one row each, then mean and sd."""
        names = [name for name in dict.fromkeys((self.objective, *SHOWN)) if name in self.mean]
        width = max(len(name) for name in names) + 2

        def row(label: object, values: dict[str, float]) -> str:
            return f"  {label!s:<6}" + "".join(f"{format_number(values[name]):>{width}}" for name in names)

        mean, sd = self.mean[self.objective], self.sd[self.objective]
        lines = [
            f"Cross-validation, {len(self.folds)} folds: {self.objective} {format_number(mean)} ± {format_number(sd)}"
        ]
        lines.append("  fold  " + "".join(f"{name:>{width}}" for name in names))
        lines += [row(k, fold) for k, fold in enumerate(self.folds)]
        return "\n".join([*lines, row("mean", self.mean), row("sd", self.sd)])


def cross_validate(cfg: DictConfig) -> CrossValidation:
    """One run per fold in `<run>/fold_<k>/` (its own TensorBoard run and checkpoints), then with cv.refit=true
    one on all the rows outside the test split, in the run directory itself: the checkpoint eval.py and
    predict.py take. The rows are read once; each fold is normalized on its own training rows."""
    folds = cfg.cv.folds
    if cfg.get("ckpt_path"):
        raise ConfigError(
            f"ckpt_path={cfg.ckpt_path} resumes one run, and cv.folds={folds} trains {folds} new ones; leave "
            "ckpt_path out, or resume a fold's run on its own (ckpt_path=<run>/fold_<k>, without cv.folds)."
        )
    first: TabularDataModule = build_datamodule(cfg, folds=folds, fold=0)
    first.setup("fit")
    results = []
    for k in range(folds):
        datamodule = first if k == 0 else first.with_fold(k)
        results.append(fit(rerouted(cfg, Path(cfg.output_dir) / f"fold_{k}"), datamodule).metrics)
    refit = None
    if cfg.cv.refit:  # no validation rows: what a sweep would watch becomes the training metric
        refit_cfg = rerouted(cfg, Path(cfg.output_dir))
        with open_dict(refit_cfg):
            refit_cfg.optimized_metric = cfg.optimized_metric.replace("val/", "train/", 1)
        refit = fit(refit_cfg, first.with_fold(None))
    return CrossValidation(results, refit, cfg.optimized_metric, cfg.convergence.rtol)


def rerouted(cfg: DictConfig, output_dir: Path) -> DictConfig:
    """The config of a run written into `output_dir` (its loggers, checkpoints and plots follow `output_dir`)."""
    routed = copy.deepcopy(cfg)
    with open_dict(routed):
        routed.output_dir = str(output_dir)
    return routed
