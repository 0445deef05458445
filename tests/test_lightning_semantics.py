"""Lightning works as its docs say: it counts one batch per training_step, and its Trainer options apply."""

import math

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import Callback
from omegaconf import OmegaConf

from linreg.fit import fit

# 4000 rows, a fifth held out: 3200 training rows in batches of 16, 200 batches an epoch, one SGD step each.
MINI_BATCHES = ["data.batch_size=16", "optimizer=sgd", "optimizer.lr=0.1", "optimizer.momentum=0"]
DATA = ["data=synthetic", "data.n_samples=4000", "data.n_features=4", *MINI_BATCHES, "~logger"]
BATCHES_PER_EPOCH = 200


class BatchCounter(Callback):
    """Counts the hooks Lightning calls: one per batch, one per validation."""

    def __init__(self) -> None:
        self.train_batches = self.optimizer_steps = self.validations = 0
        self.learning_rates: list[float] = []  # the rate of each optimizer step

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args) -> None:
        self.train_batches += 1

    def on_before_optimizer_step(self, trainer: L.Trainer, pl_module: L.LightningModule, optimizer) -> None:
        self.optimizer_steps += 1
        self.learning_rates.append(optimizer.param_groups[0]["lr"])

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.validations += 0 if trainer.sanity_checking else 1


COUNTER = f"+callbacks.counter._target_={__name__}.BatchCounter"


def counter_of(run) -> BatchCounter:
    return next(c for c in run.trainer.callbacks if isinstance(c, BatchCounter))


def test_every_batch_is_one_training_step_one_optimizer_step_and_one_hook_call(train_with):
    run = train_with(*DATA, "trainer.max_epochs=2", COUNTER)

    counter = counter_of(run)
    assert counter.train_batches == counter.optimizer_steps == 2 * BATCHES_PER_EPOCH
    assert run.trainer.global_step == run.trainer.estimated_stepping_batches == 2 * BATCHES_PER_EPOCH
    assert run.trainer.num_training_batches == BATCHES_PER_EPOCH


def test_checkpoints_every_n_train_steps_come_every_n_optimizer_steps(train_with, tmp_path):
    every = tmp_path / "every_50"
    train_with(
        *DATA,
        "trainer.max_epochs=2",
        "+callbacks.every_50._target_=lightning.pytorch.callbacks.ModelCheckpoint",
        f"+callbacks.every_50.dirpath={every}",
        "+callbacks.every_50.every_n_train_steps=50",
        "+callbacks.every_50.save_top_k=-1",
    )

    assert len(list(every.glob("*.ckpt"))) == 2 * BATCHES_PER_EPOCH // 50


def test_val_check_interval_counts_batches(train_with):
    run = train_with(*DATA, "trainer.max_epochs=1", "+trainer.val_check_interval=50", COUNTER)

    assert counter_of(run).validations == BATCHES_PER_EPOCH // 50


def test_limits_overfit_batches_and_fast_dev_run_count_batches(train_with, tmp_path):
    limited = train_with(*DATA, "trainer.max_epochs=2", "+trainer.limit_train_batches=7", COUNTER)
    assert counter_of(limited).train_batches == limited.trainer.global_step == 14

    overfit = train_with(
        *DATA, "trainer.max_epochs=3", "+trainer.overfit_batches=2", COUNTER, f"output_dir={tmp_path / 'overfit'}"
    )
    assert counter_of(overfit).train_batches == 6 and overfit.trainer.num_training_batches == 2

    smoke = train_with(*DATA, "+trainer.fast_dev_run=3", COUNTER, f"output_dir={tmp_path / 'fdr'}")
    assert counter_of(smoke).train_batches == 3


def test_accumulating_two_batches_is_one_step_on_a_batch_twice_as_large(train_with, tmp_path):
    settings = [*DATA, "data.normalize=none", "trainer.max_epochs=2", "seed=3", "~callbacks"]
    accumulated = train_with(*settings, "data.batch_size=8", "trainer.accumulate_grad_batches=2")
    doubled = train_with(*settings, "data.batch_size=16", f"output_dir={tmp_path / 'doubled'}")

    assert accumulated.trainer.global_step == doubled.trainer.global_step == 2 * BATCHES_PER_EPOCH
    torch.testing.assert_close(accumulated.model.linear.weight, doubled.model.linear.weight, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(accumulated.model.linear.bias, doubled.model.linear.bias, rtol=1e-5, atol=1e-6)


class StepSizes(Callback):
    """The distance the weights move at each optimizer step."""

    def __init__(self) -> None:
        self.before, self.sizes = None, []

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, *args) -> None:
        self.before = torch.cat([p.detach().flatten().clone() for p in pl_module.linear.parameters()])

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args) -> None:
        after = torch.cat([p.detach().flatten() for p in pl_module.linear.parameters()])
        self.sizes.append(float((after - self.before).norm()))


def test_gradient_clipping_bounds_the_gradient_norm_of_every_step(train_with):
    # Raw t_u at lr 1e-2 diverges at once (the book's lesson); clipped to norm 1, SGD moves the weights by lr·1.
    run = train_with(
        "experiment=dlwpt_thermometer",
        "data.normalize=none",
        "trainer.gradient_clip_val=1",
        "trainer.max_epochs=20",
        "~callbacks",
        "~logger",
        f"+callbacks.sizes._target_={__name__}.StepSizes",
    )

    sizes = next(c for c in run.trainer.callbacks if isinstance(c, StepSizes)).sizes
    assert math.isfinite(run.metrics["train/loss"])
    assert len(sizes) == 20 and max(sizes) == pytest.approx(1e-2, rel=1e-4)


def test_a_one_cycle_schedule_stepped_by_lightning_ends_at_its_final_rate(train_with):
    run = train_with(*DATA, "trainer.max_epochs=2", "scheduler=onecycle", "optimizer.lr=0.05", COUNTER)

    rates = counter_of(run).learning_rates
    assert len(rates) == 2 * BATCHES_PER_EPOCH  # total_steps: Lightning's estimate of the run's steps
    assert rates[0] == pytest.approx(0.05 / 25.0)  # max_lr / div_factor
    assert max(rates) == pytest.approx(0.05, rel=1e-3)
    assert rates[-1] == pytest.approx(0.05 / 25.0 / 10000.0, rel=1e-3)  # ... / final_div_factor


def test_lbfgs_converges_to_least_squares_on_the_thermometer_data(train_with):
    run = train_with("optimizer=lbfgs", "trainer.max_epochs=5", "~logger")

    weight, bias = run.model.equation()
    expected_weight, expected_bias = run.least_squares.equation(
        run.model.feature_normalizer, run.model.target_normalizer
    )
    assert weight.item() == pytest.approx(expected_weight.item(), rel=1e-4)
    assert bias.item() == pytest.approx(expected_bias.item(), rel=1e-4)


def test_a_run_never_rewrites_its_config(make_config):
    cfg = make_config("trainer.max_epochs=2", "~logger")  # no validation split: train/loss is watched
    before = OmegaConf.to_yaml(cfg)

    fit(cfg)
    assert OmegaConf.to_yaml(cfg) == before
    assert cfg.optimized_metric == "train/loss"
