"""linreg: fit, inspect and reproduce linear regression models on tabular data with Lightning + Hydra."""

import os

from omegaconf import OmegaConf

# configs/hydra/default.yaml names run directories after the time and ${pid:}, so that two runs
# started in the same second never share a directory. Cached like Hydra's ${now:}: the jobs of a
# sweep, also those in other processes (hydra/launcher=joblib), get the sweep's value.
OmegaConf.register_new_resolver("pid", os.getpid, replace=True, use_cache=True)
