"""linreg: fit, inspect and reproduce linear regression models on tabular data with Lightning + Hydra."""

import hashlib
import os
import re

from omegaconf import DictConfig, OmegaConf

from linreg import launchers

MAX_JOB_DIRNAME = 80  # characters of a sweep job's directory name; longer ones end in a digest instead


def metric_of_the_run(metric: str, *, _root_: DictConfig) -> str:
    """`val/…` where the data holds out a validation split (or cross-validation folds), `train/…` where it does
    not (data.val_fraction=0)."""
    has_validation = bool(OmegaConf.select(_root_, "data.val_fraction", default=0)) or bool(
        OmegaConf.select(_root_, "cv.folds", default=0)
    )
    return metric if has_validation else metric.replace("val/", "train/", 1)


def job_dirname(number: int, overrides: str) -> str:
    """`3_optimizer=adam,optimizer.lr=0.1`: a sweep job's directory (and TensorBoard run) named by its number and
    the overrides that made it, so runs tell themselves apart. Characters other than letters, digits and
    `.=,+-_` become `_` (a path in a value makes no subfolders); a name over MAX_JOB_DIRNAME characters is cut and
    ends in a digest of the whole, so it stays unique. The number keeps jobs with the same overrides apart.

    >>> job_dirname(2, "data.path=/tmp/a b.csv,optimizer=adam")
    '2_data.path=_tmp_a_b.csv,optimizer=adam'
    """
    name = f"{number}_{re.sub(r'[^A-Za-z0-9.=,+_-]', '_', overrides)}" if overrides else str(number)
    if len(name) <= MAX_JOB_DIRNAME:
        return name
    digest = hashlib.sha1(name.encode()).hexdigest()[:8]
    return f"{name[: MAX_JOB_DIRNAME - 9]}~{digest}"


# configs/hydra/default.yaml names run directories after the time and ${pid:}, so that two runs
# started in the same second never share a directory. Cached like Hydra's ${now:}: the jobs of a
# sweep, also those in other processes (hydra/launcher=joblib), get the sweep's value.
OmegaConf.register_new_resolver("pid", os.getpid, replace=True, use_cache=True)
# configs/hydra/default.yaml: hydra.run.dir: logs/train/${run_name:} (shared by the processes a launcher starts),
# hydra.job_logging's file train${log_suffix:}.log and ${console_level:};
# configs/trainer/ddp.yaml: ${launcher:nodes}, ${launcher:processes}
OmegaConf.register_new_resolver("run_name", launchers.run_name, replace=True, use_cache=True)
OmegaConf.register_new_resolver("log_suffix", launchers.log_suffix, replace=True)
OmegaConf.register_new_resolver("console_level", launchers.console_level, replace=True)
OmegaConf.register_new_resolver(
    "launcher",
    lambda what: {"nodes": launchers.nodes, "processes": launchers.processes_per_node}[what](),
    replace=True,
)
# configs/hydra/default.yaml: hydra.sweep.subdir: ${job_dirname:${hydra.job.num},${hydra.job.override_dirname}}
OmegaConf.register_new_resolver("job_dirname", job_dirname, replace=True)
# configs/train.yaml: optimized_metric: ${metric_of_the_run:val/loss}
OmegaConf.register_new_resolver("metric_of_the_run", metric_of_the_run, replace=True)
