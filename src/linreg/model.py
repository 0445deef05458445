"""The LightningModule: a net (`nn.Linear` by default, an MLP, your own `nn.Module`) between the stored input and
target normalizations, with the loss and metrics the config names."""

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import lightning as L
import torch
from torch import Tensor, nn
from torchmetrics import MeanMetric, MeanSquaredError, MetricCollection, R2Score

from linreg.classes import construct
from linreg.errors import ConfigError
from linreg.intervals import PredictionIntervals
from linreg.least_squares import LeastSquares, penalty, soft_threshold
from linreg.normalize import Normalizer, to_original_units
from linreg.runtime import logs_this_step


class R2(R2Score):
    """R² that is NaN, instead of an error, on a split of fewer than two rows (a tiny table's validation)."""

    def compute(self) -> Tensor:
        return super().compute() if self.total >= 2 else torch.tensor(math.nan, device=self.total.device)


@dataclass
class DataFacts:
    """What a model learns of its table and keeps in its checkpoints, so that a checkpoint alone predicts from raw
    rows: the column names, the plan that encodes a file's columns into features (plain values, see
    data/columns.py; None: the features are the file's columns) and the normalizations fitted on the training rows.
    """

    feature_names: list[str]
    target_names: list[str]
    columns: dict | None = None
    normalize: str = "none"
    normalize_targets: bool = False
    feature_normalizer: Normalizer | None = field(default=None, repr=False)
    target_normalizer: Normalizer | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        for key in ("feature_names", "target_names"):
            names = getattr(self, key)
            if not isinstance(names, list | tuple) or not names or not all(isinstance(n, str) for n in names):
                raise ValueError(f"{key} is not a list of column names")
        if self.columns is not None and not isinstance(self.columns, dict):
            raise ValueError("columns is not a plan of columns")

    @classmethod
    def of(cls, value: "DataFacts | Mapping[str, Any]") -> "DataFacts":
        """The facts themselves, or rebuilt from their plain values (a checkpoint's `data` setting)."""
        if isinstance(value, DataFacts):
            return value
        if not isinstance(value, Mapping):
            raise ValueError("data is not the facts of a table")
        return cls(**value)

    def plain(self) -> dict[str, Any]:
        """The facts that are plain values (the normalizations are the model's buffers)."""
        facts = asdict(self, dict_factory=dict)
        return {key: value for key, value in facts.items() if not key.endswith("_normalizer")}


class Regressor(L.LightningModule):
    """Predicts targets from raw feature values; trains its net in the normalized space the data module chose.

    The contract of a model of this template (your own LightningModule subclasses this one;
    see README: "Swapping the model"):
    - its settings are plain values: `data` (a DataFacts), `net`, `loss` and each of `metrics` a class's settings
      (`{"_target_": ..., ...}`), so checkpoints keep them and eval, predict and export rebuild the model;
    - `forward` maps raw features to raw targets (the normalizations are buffers, inside the model);
    - it logs `train/loss`, `val/loss`, `val/<metric>` (and `test/...`);
    - `linear` is the net when it is one `nn.Linear`: then the exact analysis (least squares, the verdict, the
      equation, intervals) describes this model; for any other net it is None and that analysis says so.

    >>> facts = DataFacts(["temperature", "rainfall", "humidity"], ["apples", "oranges"])
    >>> model = Regressor(facts, net={"_target_": "torch.nn.Linear"}, loss={"_target_": "torch.nn.MSELoss"})
    >>> model(torch.zeros(5, 3)).shape
    torch.Size([5, 2])
    """

    def __init__(
        self,
        data: DataFacts | Mapping[str, Any],
        net: Mapping[str, Any],
        loss: Mapping[str, Any],
        metrics: Mapping[str, Mapping[str, Any] | None] | None = None,
        l2: float = 0.0,
        l1: float = 0.0,
        init: dict | None = None,
        lr: float | None = None,
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
        scheduler: dict[str, Any] | None = None,
    ) -> None:
        """`net` is built with `in_features` and `out_features` from the table; `optimizer` takes the parameters
        (a `_partial_` config); `scheduler` is Lightning's lr_scheduler dictionary whose "scheduler" takes the
        optimizer; `lr`, if given, replaces the optimizer's own rate (the learning-rate finder sets it); `l2`, `l1`
        and `init` are a linear net's penalties and initial weight and bias."""
        super().__init__()
        # Plain values only: a checkpoint must load without unpickling objects.
        self.save_hyperparameters(ignore=["data", "optimizer", "scheduler"], logger=False)
        self.data = DataFacts.of(data)
        self.hparams["data"] = self.data.plain()
        n_features, n_targets = len(self.data.feature_names), len(self.data.target_names)
        self.feature_normalizer = self.data.feature_normalizer or Normalizer(n_features)
        self.target_normalizer = self.data.target_normalizer or Normalizer(n_targets)
        self.net = construct(net, "model.net", in_features=n_features, out_features=n_targets)
        self.loss_fn = construct(loss, "loss")
        self.check_linear_settings(l1, l2, init, optimizer)
        # Filled from the training split's least squares (fit.py), for predict.py's intervals.
        self.intervals = PredictionIntervals(n_features, n_targets)
        self.optimizer_factory, self.scheduler_config = optimizer, scheduler
        self.saved_schedules: list = []  # a resumed run's schedule states (on_load_checkpoint)
        # The training loss is summed on the device and logged once an epoch: updating a metric object would
        # add about 16 µs to every step (4 % of a step on a thousand rows on a laptop CPU). The evaluation
        # losses use metric objects, with their NaN checks off (each would wait for the device).
        self.register_buffer("train_loss_sum", torch.zeros(()), persistent=False)
        self.train_rows, self.step_rows, self.log_step_loss = 0, 0, False
        self.val_loss, self.test_loss = MeanMetric(nan_strategy="disable"), MeanMetric(nan_strategy="disable")
        errors = self.metrics_of(metrics or {})
        self.val_metrics, self.test_metrics = errors.clone(prefix="val/"), errors.clone(prefix="test/")

    def metrics_of(self, settings: Mapping[str, Mapping[str, Any] | None]) -> MetricCollection:
        """The configured metrics (a null one is off), computed in the targets' own units; an MSE is left out where
        it is the loss already (the MSE loss on targets in their own units)."""
        metrics = {name: construct(spec, f"metrics.{name}") for name, spec in settings.items() if spec is not None}
        if self.loss_is_mse and not self.data.normalize_targets:
            metrics = {name: metric for name, metric in metrics.items() if type(metric) is not MeanSquaredError}
        return MetricCollection(metrics)

    @property
    def linear(self) -> nn.Linear | None:
        """The net when it is one linear layer, whose weights the exact linear analysis describes; else None."""
        return self.net if type(self.net) is nn.Linear else None

    @property
    def loss_is_mse(self) -> bool:
        """Whether the loss is the mean squared error, whose optimum for a linear net is least squares."""
        return type(self.loss_fn) is nn.MSELoss and self.loss_fn.reduction == "mean"

    @property
    def aims_at_least_squares(self) -> bool:
        """Whether least squares (with the model's penalties) is the optimum training should reach: a linear net
        with the MSE loss. Only then do the gap, the convergence stop and the verdict apply."""
        return self.linear is not None and self.loss_is_mse

    @property
    def net_name(self) -> str:
        return type(self.net).__name__

    def check_linear_settings(self, l1: float, l2: float, init: dict | None, optimizer: Any) -> None:
        """Penalties and initial values are a linear net's (exact baselines exist for them only)."""
        given = [f"model.{key}" for key, value in (("l1", l1), ("l2", l2)) if value]
        given += [f"model.init.{key}" for key, value in (init or {}).items() if value is not None]
        if given and self.linear is None:
            raise ConfigError(
                f"{', '.join(given)} apply to a linear net's weights, and model.net is {self.net_name}; leave "
                "them out (a penalty on every weight: optimizer.weight_decay) or use model=linear."
            )
        if l1 and getattr(optimizer, "func", None) is torch.optim.LBFGS:
            raise ConfigError(
                f"model.l1={l1} makes the loss non-smooth, which L-BFGS's line search cannot handle; train with "
                "optimizer=sgd (a proximal step applies the l1 penalty: exact zeros, the exact lasso optimum) or "
                "another optimizer=."
            )
        if self.linear is not None:
            self._set_initial_values(**(init or {}))

    def _set_initial_values(self, weight: float | list | None = None, bias: float | list | None = None) -> None:
        """Start from given values (the book starts at w=1, b=0) instead of PyTorch's random ones."""
        with torch.no_grad():
            for parameter, value, key in ((self.net.weight, weight, "weight"), (self.net.bias, bias, "bias")):
                if value is None or parameter is None:  # (no bias: model.net.bias=false)
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
        return self.target_normalizer.inverse(self.net(self.feature_normalizer(features)))

    def _step(self, batch: Sequence[Tensor]) -> tuple[Tensor, Tensor]:
        """The loss in normalized space and the normalized predictions."""
        features, targets = batch
        normalized_prediction = self.net(self.feature_normalizer(features))
        return self.loss_fn(normalized_prediction, self.target_normalizer(targets)), normalized_prediction

    def on_train_epoch_start(self) -> None:
        self.train_loss_sum.zero_()
        self.train_rows = 0

    def on_train_start(self) -> None:
        # Step values only where an epoch has more steps than the logging interval: else the epoch curve is finer.
        steps_per_epoch = self.trainer.num_training_batches / self.trainer.accumulate_grad_batches
        self.log_step_loss = steps_per_epoch > self.trainer.log_every_n_steps

    def training_step(self, batch: Sequence[Tensor], batch_idx: int) -> Tensor:
        loss, _ = self._step(batch)
        if self.hparams.get("l1") or self.hparams.get("l2"):  # (no tensor operations a step without them)
            loss = loss + self.penalty()
        self.step_rows = len(batch[0])
        return self.mean_over_ranks(loss) if self.trainer.world_size > 1 else loss

    def penalty(self) -> Tensor:
        """The l2 penalty, with its gradient, and the l1 penalty's value without one: optimizer_step applies l1
        as a proximal step (see least_squares.py for the objective)."""
        weight = self.net.weight
        return penalty(weight, l2=self.hparams.get("l2", 0.0)) + penalty(
            weight.detach(), l1=self.hparams.get("l1", 0.0)
        )

    def optimizer_step(self, epoch: int, batch_idx: int, optimizer: Any, optimizer_closure: Any = None) -> None:
        """Lightning's step; with model.l1, then the l1 penalty's proximal step: each weight moved toward zero by
        lr·l1/targets, and set to zero within it (proximal gradient descent: the lasso's exact zeros)."""
        super().optimizer_step(epoch, batch_idx, optimizer, optimizer_closure)
        l1 = self.hparams.get("l1", 0.0)
        if l1:
            threshold = optimizer.param_groups[0]["lr"] * l1 / self.net.weight.shape[0]
            with torch.no_grad():
                self.net.weight.copy_(soft_threshold(self.net.weight, threshold))

    def exact_optimum(self, least_squares: LeastSquares) -> LeastSquares:
        """What training should reach: the training split's least squares with this model's penalties."""
        return least_squares.penalized(self.hparams.get("l1", 0.0), self.hparams.get("l2", 0.0))

    def mean_over_ranks(self, loss: Tensor) -> Tensor:
        """The mean loss over the rows of every rank's share of the step's batch, with this rank's gradient
        weighted by its share: DDP averages the ranks' gradients, which then make the gradient of that mean also
        where the shares differ (6 and 5 of 11 rows), as one process would take it.

        L-BFGS's line search compares loss values: with each rank's own value the ranks would evaluate the
        closure a different number of times, and the gradients' all-reduce would hang. `loss - loss.detach()`
        is exactly zero, so the value is the all-reduced mean, bit for bit the same on every rank.
        """
        rows = torch.tensor(float(self.step_rows), dtype=loss.dtype, device=loss.device)
        local = torch.stack([rows, loss.detach() * rows])
        total_rows, total_loss = self.trainer.strategy.reduce(local, reduce_op="sum")
        self.step_rows = total_rows  # (the epoch's mean loss counts every rank's rows)
        share = rows * self.trainer.world_size / total_rows
        return total_loss / total_rows + share * (loss - loss.detach())

    def on_train_epoch_end(self) -> None:
        # The mean over the epoch's rows (and DDP ranks): what early stopping, best.ckpt and the plateau schedule
        # watch (Lightning calls them after this hook).
        self.log("train/loss", self.train_loss_sum / self.train_rows, prog_bar=True, sync_dist=True)

    def on_train_batch_end(self, outputs: dict[str, Tensor], batch: Sequence[Tensor], batch_idx: int) -> None:
        # The loss of the batch's last training_step: L-BFGS calls it several times a step (its closure), and
        # the last call is at the weights its step ended on. (Lightning divides it by accumulate_grad_batches.)
        accumulated, rows = self.trainer.accumulate_grad_batches, self.step_rows
        if isinstance(rows, Tensor):  # (under DDP: every rank's rows, on the device, which mean_over_ranks counted)
            self.train_loss_sum.add_(outputs["loss"] * (rows * accumulated))
        else:
            self.train_loss_sum.add_(outputs["loss"], alpha=rows * accumulated)
        self.train_rows += rows
        if self.log_step_loss and logs_this_step(self.trainer):
            self.log("train/loss_step", outputs["loss"] * accumulated)

    def validation_step(self, batch: Sequence[Tensor], batch_idx: int) -> None:
        loss, prediction = self._step(batch)
        self.val_loss.update(loss, len(prediction))
        self.val_metrics.update(self.target_normalizer.inverse(prediction), batch[1])  # errors in original units

    def on_validation_epoch_end(self) -> None:
        self.log("val/loss", self.val_loss, prog_bar=True)
        self.log_dict(self.val_metrics)

    def test_step(self, batch: Sequence[Tensor], batch_idx: int) -> None:
        loss, prediction = self._step(batch)
        self.test_loss.update(loss, len(prediction))
        self.test_metrics.update(self.target_normalizer.inverse(prediction), batch[1])

    def on_test_epoch_end(self) -> None:
        self.log(f"{self.test_metrics.prefix}loss", self.test_loss)
        self.log_dict(self.test_metrics)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """The model's class by name, as plain data: checkpoints.py rebuilds it from an allow-list."""
        checkpoint["model_class"] = f"{type(self).__module__}.{type(self).__qualname__}"

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """A resumed run keeps the least-squares covariance of its own training rows (predict.py's intervals),
        not the checkpoint's: with allow_changed_data the rows differ. (Lightning calls it before
        configure_optimizers, which checks the saved schedule's length.)"""
        state = checkpoint["state_dict"]
        state.update({f"intervals.{key}": value for key, value in self.intervals.state_dict().items()})
        self.saved_schedules = checkpoint.get("lr_schedulers") or []

    def configure_optimizers(self) -> dict[str, Any]:
        if self.optimizer_factory is None:
            raise ConfigError("No optimizer is configured; choose one with optimizer=sgd|adam|adamw|rmsprop|lbfgs.")
        optimizer = self.make_optimizer(self.parameters())
        if self.scheduler_config is None:
            return {"optimizer": optimizer}
        schedule = self.make_schedule(optimizer, total_steps=lambda: self.trainer.estimated_stepping_batches)
        self.check_resumed_length(schedule)
        return {"optimizer": optimizer, "lr_scheduler": {**self.scheduler_config, "scheduler": schedule}}

    def check_resumed_length(self, schedule: Any) -> None:
        """A schedule of a fixed number of steps (OneCycleLR) resumes only into a run of that many steps: the
        saved state would replace this run's length, and stepping past it fails."""
        saved = (self.saved_schedules or [None])[0]
        theirs, ours = (saved or {}).get("total_steps"), getattr(schedule, "total_steps", None)
        if isinstance(saved, dict) and theirs is not None and theirs != ours:
            raise ConfigError(
                f"The checkpoint's schedule runs {theirs} optimizer steps and this run has {ours}: a one-cycle "
                "schedule fixes its length when a run starts. Resume with the trainer.max_epochs (and batch size) "
                "it started with, or leave ckpt_path out to start a new run."
            )

    def make_optimizer(self, parameters: Any) -> torch.optim.Optimizer:
        """The configured optimizer over `parameters`, at this model's `lr` (the config's, unless lr=auto)."""
        return self.optimizer_factory(parameters, **({} if self.hparams.lr is None else {"lr": self.hparams.lr}))

    def make_schedule(self, optimizer: torch.optim.Optimizer, total_steps: Callable[[], int | float]) -> Any:
        """The configured torch scheduler of `optimizer`; `total_steps: null` (OneCycleLR) becomes the run's
        length, `total_steps()`, which a run without a limit does not have."""
        make_scheduler = self.scheduler_config["scheduler"]
        if getattr(make_scheduler, "keywords", {}).get("total_steps", 0) is None:
            steps = total_steps()
            if not math.isfinite(steps):
                raise ConfigError(
                    "scheduler.total_steps=null takes the run's length, and this run has no limit "
                    "(trainer.max_epochs=-1, trainer.max_steps=-1); set trainer.max_epochs, trainer.max_steps or "
                    "scheduler.total_steps."
                )
            make_scheduler = functools.partial(make_scheduler, total_steps=int(steps))
        return make_scheduler(optimizer)

    def linear_map(self) -> tuple[Tensor, Tensor]:
        """A linear net's weight and bias in the normalized space (a zero bias for one through the origin,
        model.net.bias=false)."""
        bias = self.net.bias if self.net.bias is not None else self.net.weight.new_zeros(self.net.out_features)
        return self.net.weight, bias

    def coefficient_gap(self, optimum: LeastSquares) -> float:
        """How far this linear net's coefficients are from `optimum`'s (`train/coefficient_gap`, the verdict's)."""
        return optimum.coefficient_gap(*self.linear_map(), self.feature_normalizer, self.target_normalizer)

    def equation(self) -> tuple[Tensor, Tensor]:
        """A linear net's weights (targets × features) and biases that map raw features straight to raw targets."""
        if self.linear is None:
            raise ConfigError(f"model.net is {self.net_name}, not one linear layer: it has no equation.")
        return to_original_units(*self.linear_map(), self.feature_normalizer, self.target_normalizer)
