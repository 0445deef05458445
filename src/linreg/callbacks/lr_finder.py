"""Lightning's learning-rate finder before training, reporting its suggestion and saving its plot."""

import logging
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import LearningRateFinder as LightningLearningRateFinder

from linreg.callbacks.plots import save_figure
from linreg.errors import ConfigError

log = logging.getLogger(__name__)


class LearningRateFinder(LightningLearningRateFinder):
    """Tries `num_training` steps of growing learning rates when fit starts; `apply` trains with the suggestion.

    The model's `lr` hyperparameter takes the suggestion (it replaces the optimizer config's lr and is
    saved in the checkpoints). The plot is `plots/lr_find.png` and the TensorBoard image `plots/lr_find`.
    """

    def __init__(
        self, dirpath: str, apply: bool = False, min_lr: float = 1e-8, max_lr: float = 1.0, num_training: int = 100
    ) -> None:
        super().__init__(
            min_lr=min_lr, max_lr=max_lr, num_training_steps=num_training, update_attr=apply, attr_name="lr"
        )
        self.dirpath, self.apply = Path(dirpath), apply

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_fit_start(trainer, pl_module)
        if self.optimal_lr is None:  # Lightning skips the search under fast_dev_run
            return
        suggestion = self.optimal_lr.suggestion()
        if suggestion is None:
            raise ConfigError(
                "tune=lr_find found no learning rate: the loss never fell. Widen tune.min_lr/tune.max_lr."
            )
        save_figure(self.optimal_lr.plot(suggest=True), "lr_find", self.dirpath, trainer)
        used = " (used: tune.apply=true)" if self.apply else " (tune.apply=true to use it)"
        log.info(f"lr_find suggests lr={suggestion:.3g}{used}")
