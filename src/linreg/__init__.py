"""linreg: fit, inspect and reproduce linear regression models on tabular data with Lightning + Hydra."""

import os

from omegaconf import DictConfig, OmegaConf


def metric_of_the_run(metric: str, *, _root_: DictConfig) -> str:
    """`val/…` where the data holds out a validation split, `train/…` where it does not (data.val_fraction=0)."""
    has_validation = bool(OmegaConf.select(_root_, "data.val_fraction", default=0))
    return metric if has_validation else metric.replace("val/", "train/", 1)


# configs/hydra/default.yaml names run directories after the time and ${pid:}, so that two runs
# started in the same second never share a directory. Cached like Hydra's ${now:}: the jobs of a
# sweep, also those in other processes (hydra/launcher=joblib), get the sweep's value.
OmegaConf.register_new_resolver("pid", os.getpid, replace=True, use_cache=True)
# configs/train.yaml: optimized_metric: ${metric_of_the_run:val/loss}
OmegaConf.register_new_resolver("metric_of_the_run", metric_of_the_run, replace=True)
