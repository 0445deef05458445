"""The LightningModule: one `nn.Linear` between the stored input and target normalizations."""

import contextlib
import logging
import math
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence

import lightning as L
import torch
from torch import Tensor, nn
from torchmetrics import MeanAbsoluteError, MeanSquaredError, MetricCollection, R2Score

from linreg.errors import ConfigError, TrainingDiverged
from linreg.normalize import Normalizer, to_original_units

# Every job imports this module right after Lightning. `import lightning` gives its logger a console
# handler of its own; where Hydra has already set up the root logger (console and the job's .log
# file), that would print every Lightning message twice.
if logging.getLogger().hasHandlers():
    logging.getLogger("lightning").handlers.clear()


@contextlib.contextmanager
def lightning_notices_silenced() -> Iterator[None]:
    """Hide Lightning's warnings that do not apply to this template's runs."""
    with warnings.catch_warnings():
        # Training loss is logged per epoch, not every n steps.
        warnings.filterwarnings("ignore", message=".*smaller than the logging interval")
        # A split of fraction 0 is left out on purpose.
        warnings.filterwarnings("ignore", message="Total length of `list` across ranks is zero")
        # The run directory is new; Hydra's own files are in it, no earlier metrics.csv.
        warnings.filterwarnings("ignore", message="Experiment logs directory .* exists and is not empty")
        # trainer.test returns only what is logged for loggers, configured or not.
        warnings.filterwarnings("ignore", message=r".*logger=True\)` but have no logger configured")
        # Lightning's own use of a torch API.
        warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")
        yield


LOSSES: dict[str, Callable[[], nn.Module]] = {"mse": nn.MSELoss, "l1": nn.L1Loss, "huber": nn.HuberLoss}

OptimizerFactory = Callable[..., torch.optim.Optimizer]
SchedulerFactory = Callable[[torch.optim.Optimizer], object]


STEP = "step"  # the logged name Lightning takes for the x-axis


def results(logged: Mapping[str, Tensor | float]) -> dict[str, float]:
    """Logged metrics as numbers, without the x-axis value that rides along with them."""
    return {name: float(value) for name, value in logged.items() if name != STEP}


class R2(R2Score):
    """R² that is NaN, instead of an error, on a split of fewer than two rows (a tiny table's validation)."""

    def compute(self) -> Tensor:
        return super().compute() if self.total >= 2 else torch.tensor(math.nan, device=self.total.device)


class LinearRegressor(L.LightningModule):
    """Predicts targets from raw feature values; trains in the normalized space the data module chose.

    >>> model = LinearRegressor(["temperature", "rainfall", "humidity"], ["apples", "oranges"])
    >>> model(torch.zeros(5, 3)).shape
    torch.Size([5, 2])
    """

    def __init__(
        self,
        feature_names: Sequence[str],
        target_names: Sequence[str],
        loss: str = "mse",
        init: dict | None = None,
        normalize: str = "none",
        feature_normalizer: Normalizer | None = None,
        target_normalizer: Normalizer | None = None,
        optimizer: OptimizerFactory | None = None,
        scheduler: SchedulerFactory | None = None,
        scheduler_monitor: str = "val/loss",
        gradient_clip_val: float | None = None,
        data_config: dict | None = None,
    ) -> None:
        super().__init__()
        # training_step gets a list of batches and takes one optimizer step per batch (see linreg.data).
        self.automatic_optimization = False
        # Plain values only: a checkpoint must load without unpickling objects.
        # (linreg.train logs its own short list of hyperparameters, for TensorBoard's HParams tab.)
        self.save_hyperparameters(
            ignore=["feature_normalizer", "target_normalizer", "optimizer", "scheduler"], logger=False
        )
        if loss not in LOSSES:
            raise ConfigError(f"model.loss={loss!r} is not a loss; choose one of {', '.join(LOSSES)}.")
        n_features, n_targets = len(feature_names), len(target_names)
        self.feature_normalizer = feature_normalizer or Normalizer(n_features)
        self.target_normalizer = target_normalizer or Normalizer(n_targets)
        self.linear = nn.Linear(n_features, n_targets)
        self.loss_fn = LOSSES[loss]()
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self._set_initial_values(**(init or {}))
        metrics = MetricCollection(
            {"mse": MeanSquaredError(), "mae": MeanAbsoluteError(), "r2": R2(multioutput="uniform_average")}
        )
        self.val_metrics = metrics.clone(prefix="val/")
        self.test_metrics = metrics.clone(prefix="test/")
        # The least-squares losses per split (set by linreg.train for model.loss=mse): logged as gaps.
        self.least_squares_loss: dict[str, float] | None = None
        # The state of a run: the epoch's loss so far, divergence, and the curves not yet written.
        self.register_buffer("train_loss_sum", torch.zeros(()), persistent=False)
        self.train_rows = 0
        self.last_finite_loss = math.nan
        self.validated = False  # whether validation ran since the curves were last written
        self.unwritten_curves: tuple[dict[str, float], int] | None = None  # an epoch's curves, global_step
        self.next_curves_step = 0

    def _set_initial_values(self, weight: float | list | None = None, bias: float | list | None = None) -> None:
        """Start from given values (the book starts at w=1, b=0) instead of PyTorch's random ones."""
        with torch.no_grad():
            for parameter, value, key in ((self.linear.weight, weight, "weight"), (self.linear.bias, bias, "bias")):
                if value is None:
                    continue
                value = torch.as_tensor(value, dtype=parameter.dtype)
                try:
                    parameter.copy_(value.expand_as(parameter))
                except RuntimeError:
                    raise ConfigError(
                        f"model.init.{key} has shape {list(value.shape)}, but the {key} of this model has shape "
                        f"{list(parameter.shape)} (targets × features); give one number or a list of that shape."
                    ) from None

    def forward(self, features: Tensor) -> Tensor:
        """Predictions in the targets' original units from features in their original units."""
        return self.target_normalizer.inverse(self.linear(self.feature_normalizer(features)))

    def _loss(self, features: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
        """The training loss in normalized space, and the normalized predictions."""
        normalized_prediction = self.linear(self.feature_normalizer(features))
        return self.loss_fn(normalized_prediction, self.target_normalizer(targets)), normalized_prediction

    def on_train_epoch_start(self) -> None:
        self.train_loss_sum.zero_()
        self.train_rows = 0

    def training_step(self, batches: list[Sequence[Tensor]], call_idx: int) -> Tensor:
        """One optimizer step per batch of the list (manual optimization): Lightning's cost per call is paid once."""
        optimizer = self.optimizers()
        clip = self.hparams.gradient_clip_val
        log_every, max_steps = self.trainer.log_every_n_steps, self.trainer.max_steps
        for features, targets in batches:
            step = self.global_step
            loss, _ = self._loss(features, targets)
            optimizer.zero_grad()
            self.manual_backward(loss)
            if clip:  # (Lightning's Trainer option does not apply to manual steps)
                self.clip_gradients(optimizer, gradient_clip_val=clip)
            optimizer.step()  # counts in trainer.global_step
            self.step_schedulers("step")
            # Summed on the device and logged once per epoch: reading the value would wait for the device.
            self.train_loss_sum.add_(loss.detach(), alpha=len(features))
            self.train_rows += len(features)
            if step % log_every == 0:  # one wait for the device per n steps
                value = loss.item()
                self.stop_if_diverged(value, f"step {step + 1}")
                for logger in self.loggers:
                    logger.log_metrics({"train/loss_step": value}, step=step)
            if 0 < max_steps <= step + 1:
                break
        return loss.detach()  # the last batch's loss: Lightning's lr_find reads it

    def step_schedulers(self, interval: str) -> None:
        """Advance this interval's learning-rate schedules: under manual optimization Lightning leaves them to us."""
        for config in self.trainer.lr_scheduler_configs:
            if config.interval != interval:
                continue
            if isinstance(config.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                config.scheduler.step(self.trainer.callback_metrics[self.hparams.scheduler_monitor])
            else:
                config.scheduler.step()

    def on_train_epoch_end(self) -> None:
        # The mean over all rows of the epoch, on every DDP rank (a no-op in one process).
        train_loss = self.trainer.strategy.reduce(self.train_loss_sum / self.train_rows, reduce_op="mean")
        value = float(train_loss)  # the one wait for the device per epoch
        self.stop_if_diverged(value, f"epoch {self.current_epoch + 1} (step {self.global_step})")
        # For the progress bar and the callbacks that monitor it; the loggers get it with the curves.
        self.log("train/loss", train_loss, prog_bar=True, logger=False)
        if self.loggers:
            # What changes after this hook is kept now; the rest is read when the curves are written.
            epoch = {"epoch": self.current_epoch, "train/loss": value, "train/lr": self.learning_rate}
            self.unwritten_curves = epoch, self.global_step
            # Epochs of a few steps get a point every log_every_n_steps steps, as steps do: 5000 epochs of
            # a small table would spend more time writing curves than training (the last epoch: on_train_end).
            if self.global_step >= self.next_curves_step:
                self.write_curves()
        self.step_schedulers("epoch")

    def on_train_end(self) -> None:
        self.write_curves()

    def write_curves(self) -> None:
        """The latest epoch's curves to the loggers (unless they are there already), at its last optimizer step.

        They go to the loggers directly: through `self.log` each would cost about half a millisecond
        (as much as an epoch of a small table), and Lightning would put them at its count of
        training_step calls, which each take several steps.
        """
        if self.unwritten_curves is None:
            return
        curves, steps = self.unwritten_curves
        curves |= self.fit_curves(curves["train/loss"])
        for logger in self.loggers:
            logger.log_metrics(curves, step=steps - 1)
        self.unwritten_curves, self.validated = None, False
        self.next_curves_step = steps + self.trainer.log_every_n_steps

    def on_validation_epoch_end(self) -> None:
        self.validated = not self.trainer.sanity_checking

    def on_test_epoch_end(self) -> None:
        # Lightning would put the test metrics at its count of training_step calls; a logged `step`
        # is the x-value it takes instead (`results` leaves it out).
        if self.loggers:
            self.log(STEP, float(max(self.global_step - 1, 0)))

    def fit_curves(self, train_loss: float) -> dict[str, float]:
        """The latest validation metrics, the optimizer's path and the distance to least squares."""
        curves = {}
        if self.validated:  # already reduced over DDP ranks by Lightning
            metrics = self.trainer.callback_metrics
            curves |= {name: float(value) for name, value in metrics.items() if name.startswith("val/")}
        if self.linear.weight.numel() == 1:
            weight, bias = self.equation()  # in original units
            curves.update({"model/weight": weight.item(), "model/bias": bias.item()})
        if self.least_squares_loss:
            curves["train/gap_to_ols"] = train_loss - self.least_squares_loss["train"]
            if "val" in self.least_squares_loss and "val/loss" in curves:
                curves["val/gap_to_ols"] = curves["val/loss"] - self.least_squares_loss["val"]
        return curves

    def stop_if_diverged(self, loss: float, when: str) -> None:
        """End training at the first non-finite loss or weight, before a checkpoint can keep it."""
        weights_finite = torch.isfinite(self.linear.weight).all() & torch.isfinite(self.linear.bias).all()
        if math.isfinite(loss) and weights_finite:
            self.last_finite_loss = loss
            return
        hint = " or normalize the inputs (data.normalize=standardize)" if self.hparams.normalize == "none" else ""
        raise TrainingDiverged(
            f"Training diverged at {when}: the loss became {loss:g} "
            f"(last finite loss seen: {self.last_finite_loss:.6g}). "
            f"Lower the learning rate (optimizer.lr={self.learning_rate:g}){hint}. "
            "The checkpoints keep the last finite weights."
        )

    def validation_step(self, batches: list[Sequence[Tensor]], call_idx: int) -> None:
        self._evaluate(batches, "val", self.val_metrics)

    def test_step(self, batches: list[Sequence[Tensor]], call_idx: int) -> None:
        self._evaluate(batches, "test", self.test_metrics)

    def _evaluate(self, batches: list[Sequence[Tensor]], stage: str, metrics: MetricCollection) -> None:
        """The list's mean loss is logged once, weighted by its rows: the epoch's value is the mean over all rows."""
        loss_sum, rows = 0.0, 0
        for features, targets in batches:
            loss, normalized_prediction = self._loss(features, targets)
            metrics.update(self.target_normalizer.inverse(normalized_prediction), targets)  # in original units
            loss_sum, rows = loss_sum + loss * len(features), rows + len(features)
        # Validation metrics reach the loggers with the epoch's curves (see write_curves), test metrics from here.
        to_loggers = stage == "test"  # (and trainer.test returns only what is logged for the loggers)
        self.log(
            f"{stage}/loss",
            loss_sum / rows,
            prog_bar=stage == "val",
            batch_size=rows,
            sync_dist=True,
            logger=to_loggers,
        )
        self.log_dict(metrics, batch_size=rows, logger=to_loggers)

    def configure_optimizers(self) -> dict:
        if self.optimizer_factory is None:
            raise ConfigError("No optimizer is configured; choose one with optimizer=sgd|adam|adamw|rmsprop.")
        optimizer = self.optimizer_factory(params=self.parameters())
        if self.scheduler_factory is None:
            return {"optimizer": optimizer}
        scheduler = self.scheduler_factory(optimizer)
        return {"optimizer": optimizer, "lr_scheduler": scheduler}  # stepped by step_schedulers

    @property
    def learning_rate(self) -> float:
        """The optimizer's current rate (a schedule changes it)."""
        return self.optimizers().param_groups[0]["lr"]

    def equation(self) -> tuple[Tensor, Tensor]:
        """Weights (targets × features) and biases that map raw features straight to raw targets."""
        return to_original_units(self.linear.weight, self.linear.bias, self.feature_normalizer, self.target_normalizer)
