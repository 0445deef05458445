"""Training runs as a user starts them: defaults, choices of each config group, outputs, devices."""

import math

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import GRADIENT_STEPS, SGD_STEPS, events_of, requires_gpu
from torch.utils.data import DataLoader, TensorDataset

from linreg.assembly import check_devices
from linreg.errors import ConfigError
from linreg.model import Regressor
from linreg.normalize import METHODS
from linreg.train import summarize

THERMOMETER_OLS_MSE = 2.927646  # least squares on all 11 rows (numpy), the best any linear fit can do


def least_squares_mse(features: np.ndarray, targets: np.ndarray) -> float:
    design = np.column_stack([features, np.ones(len(features))])
    solution, *_ = np.linalg.lstsq(design, targets, rcond=None)
    return float(np.mean((design @ solution - targets) ** 2))


def test_the_default_run_reaches_the_least_squares_optimum(train_with, tmp_path):
    run = train_with()

    table = run.datamodule.train
    optimum = least_squares_mse(table.features.double().numpy(), table.targets.double().numpy())
    assert optimum == pytest.approx(THERMOMETER_OLS_MSE, rel=1e-6)
    assert run.metrics["train/loss"] <= optimum * 1.01
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()
    assert "t_c = 0.5368·t_u − 17.30" in summarize(run, tmp_path)


def test_tensorboard_events_hold_the_training_loss_and_hyperparameters(train_with, tmp_path):
    run = train_with(
        *GRADIENT_STEPS,
        "trainer.max_epochs=7",
        "data.val_fraction=0.2",
        "trainer.log_every_n_steps=1",
        "scheduler=step",
    )

    events = events_of(tmp_path)
    losses = [event.value for event in events.Scalars("train/loss")]
    assert len(losses) == 7 and losses[-1] == pytest.approx(run.metrics["train/loss"], rel=1e-6)
    assert {"val/loss", "val/mae", "val/r2", "train/lr"} <= set(events.Tags()["scalars"])
    assert "optimizer" in (tmp_path / "hparams.yaml").read_text()


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw", "rmsprop"])
@pytest.mark.parametrize("loss", ["mse", "l1", "huber"])
def test_every_optimizer_and_loss_trains(train_with, optimizer, loss):
    run = train_with(
        f"optimizer={optimizer}",
        f"loss={loss}",
        "optimizer.lr=0.5",
        "trainer.max_epochs=100",
        "~logger",
        "~callbacks",
    )

    weight, _ = run.model.equation()
    assert run.model.optimizers().optimizer.__class__.__name__.lower() == optimizer
    assert 0.3 < weight.item() < 0.8  # on its way from a random start to 0.5368


@pytest.mark.parametrize(
    "scheduler, final_lr",
    [
        ("step", 0.1 * 0.5**2),
        ("cosine", 0.0),
        ("plateau", None),
    ],
)
def test_schedulers_change_the_learning_rate(train_with, scheduler, final_lr):
    overrides = ["scheduler.step_size=2", "scheduler.gamma=0.5"] if scheduler == "step" else []
    if scheduler == "plateau":
        overrides = ["scheduler.patience=0", "optimizer.lr=2.0"]  # far too high: the loss gets worse at once
    run = train_with(*SGD_STEPS, f"scheduler={scheduler}", "trainer.max_epochs=5", "~logger", "~callbacks", *overrides)

    lr = run.model.optimizers().param_groups[0]["lr"]
    assert lr == pytest.approx(final_lr, abs=1e-9) if final_lr is not None else lr < 2.0


def test_normalized_targets_still_predict_in_original_units(train_with):
    run = train_with("data.normalize_targets=true", "~logger")

    weight, bias = run.model.equation()
    assert (weight.item(), bias.item()) == (pytest.approx(0.5368, abs=1e-3), pytest.approx(-17.30, abs=0.05))
    assert run.model(torch.tensor([[50.0]])).item() == pytest.approx(0.53677 * 50 - 17.3048, abs=0.05)


@pytest.mark.parametrize("normalize", METHODS)
def test_a_checkpoint_predicts_from_raw_inputs_alone(train_with, tmp_path, normalize):
    run = train_with(f"data.normalize={normalize}", "seed=1")
    checkpoint = tmp_path / "checkpoints" / "last.ckpt"

    assert "state_dict" in torch.load(checkpoint, weights_only=True)  # plain data: no pickled code needed
    loaded = Regressor.load_from_checkpoint(checkpoint)  # (Lightning's own loader, as its docs show)
    raw = torch.tensor([[21.8], [81.9]])
    torch.testing.assert_close(loaded(raw), run.model(raw))
    assert loaded.data.feature_names == ["t_u"] and loaded.data.normalize == normalize


def test_synthetic_data_recovers_the_true_weights(train_with):
    run = train_with(
        "data=synthetic",
        "data.n_samples=2000",
        "data.n_features=4",
        "data.n_targets=2",
        "data.noise=0.01",
        "data.batch_size=64",
        "optimizer=adam",
        "optimizer.lr=0.05",
        "trainer.max_epochs=10",
        "~logger",
    )

    weight, bias = run.model.equation()
    torch.testing.assert_close(weight.float(), run.datamodule.true_weight, atol=0.02, rtol=0)
    torch.testing.assert_close(bias.float(), run.datamodule.true_bias, atol=0.02, rtol=0)
    assert run.metrics["val/r2"] > 0.999


def test_a_test_split_gets_test_metrics_and_the_mse_in_original_units_where_the_loss_is_not(train_with, tmp_path):
    data = ["data=synthetic", "data.n_samples=500", "data.test_fraction=0.2", "trainer.max_epochs=5", "~logger"]
    run = train_with(*data)
    scaled = train_with(*data, "data.normalize_targets=true", f"output_dir={tmp_path / 'scaled'}")

    assert {"test/loss", "test/mae", "test/r2"} <= set(run.metrics) and "test/mse" not in run.metrics  # = test/loss
    assert scaled.metrics["test/mse"] == pytest.approx(run.metrics["test/loss"], rel=1e-3)
    assert scaled.metrics["test/loss"] < scaled.metrics["test/mse"] / 2  # in standardized units


def test_initial_values_of_the_wrong_shape_are_explained(train_with):
    with pytest.raises(ConfigError, match=r"model.init.weight has shape \[2\].*\[1, 1\]"):
        train_with("model.init.weight=[1.0,2.0]")


def test_an_unknown_loss_lists_the_valid_ones(train_with):
    with pytest.raises(Exception, match="Available options in 'loss'"):
        train_with("loss=hinge")


@pytest.mark.parametrize("precision", ["16-true", "bf16-mixed", "64-true"])
def test_lightnings_precisions_train_and_draw_the_pictures(train_with, tmp_path, precision):
    run = train_with(f"trainer.precision={precision}", "trainer.max_epochs=5", "~logger")

    assert run.verdict.gap is not None and (tmp_path / "plots" / "fit.png").is_file()
    if precision != "64-true":  # (half precision's rounding alone is 5e-4 of a coefficient or more)
        assert "trainer.precision=64-true" in run.verdict.sentence()


@pytest.mark.parametrize("trainer", ["default", "cpu", "gpu", "ddp", "ddp_spawn", "ddp_sim"])
def test_every_trainer_config_composes(make_config, trainer):
    cfg = make_config(f"trainer={trainer}")
    assert cfg.trainer.accelerator in ("cpu", "gpu", "auto") and cfg.trainer.use_distributed_sampler is False


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
@pytest.mark.parametrize("override", ["trainer=gpu", "trainer.accelerator=gpu"])
def test_asking_for_a_gpu_without_one_says_so(make_config, override):
    with pytest.raises(ConfigError, match="trainer.accelerator=gpu .* trainer=cpu"):
        check_devices(make_config(override).trainer)


@requires_gpu
@pytest.mark.gpu
@pytest.mark.parametrize("override", ["trainer=gpu", "trainer.accelerator=gpu"])
def test_gpu_training_keeps_the_data_on_the_gpu(train_with, override):
    run = train_with(override, "data=synthetic", "data.n_samples=4096", "trainer.max_epochs=3")

    assert run.datamodule.train.features.device.type == "cuda"
    assert run.datamodule.val.all_features is run.datamodule.train.all_features  # one copy on the GPU
    assert run.model.linear.weight.device.type == "cuda"
    assert run.metrics["val/r2"] > 0.9


def test_csv_logger_writes_metrics_csv(train_with, tmp_path):
    train_with(*GRADIENT_STEPS, "logger=csv", "trainer.max_epochs=3", "trainer.log_every_n_steps=1")

    assert len(pd.read_csv(tmp_path / "metrics.csv")["train/loss"].dropna()) == 3


def test_best_checkpoint_follows_the_validation_loss_and_last_is_the_final_weights(train_with, tmp_path):
    run = train_with(*GRADIENT_STEPS, "data.val_fraction=0.2", "trainer.max_epochs=30", "~logger")

    best = torch.load(tmp_path / "checkpoints" / "best.ckpt", weights_only=True)
    last = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["global_step"] == run.trainer.global_step == 30
    torch.testing.assert_close(last["state_dict"]["net.weight"], run.model.linear.weight.detach())
    assert best["callbacks"]  # ModelCheckpoint's record of the best val/loss travels with it


def test_without_a_validation_split_there_is_no_best_checkpoint(train_with, tmp_path):
    train_with("trainer.max_epochs=3", "~logger")

    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["last.ckpt"]


def test_early_stopping_ends_a_run_that_stopped_improving(train_with):
    run = train_with(
        *GRADIENT_STEPS,
        "callbacks=early_stopping",
        "callbacks.early_stopping.patience=3",
        "trainer.max_epochs=500",
        "~logger",
    )

    assert run.trainer.current_epoch < 500
    assert run.metrics["train/loss"] == pytest.approx(THERMOMETER_OLS_MSE, rel=1e-3)


def test_worker_processes_serve_the_same_batches(train_with):
    in_process = train_with("trainer.max_epochs=5", "~logger", "~callbacks", "data.batch_size=4")
    with_workers = train_with(
        "trainer.max_epochs=5", "~logger", "~callbacks", "data.batch_size=4", "data.num_workers=1"
    )

    torch.testing.assert_close(with_workers.model.linear.weight, in_process.model.linear.weight, rtol=0, atol=0)


def test_a_one_row_validation_split_gets_no_r2_but_no_crash(train_with):
    run = train_with("data=crops", "data.val_fraction=0.2", "trainer.max_epochs=2", "~logger")

    assert math.isnan(run.metrics["val/r2"]) and math.isfinite(run.metrics["val/loss"])


def test_the_fast_batches_train_the_same_weights_as_the_usual_dataloader_in_the_same_order(train_with):
    epochs, batch_size, lr, seed = 3, 2, 1e-5, 7
    run = train_with(
        "data=crops",
        "data.val_fraction=0",
        "data.normalize=none",
        f"data.batch_size={batch_size}",
        f"seed={seed}",
        "model.init.weight=0.0",
        "model.init.bias=0.0",
        "optimizer=sgd",
        "optimizer.momentum=0",
        f"optimizer.lr={lr}",
        f"trainer.max_epochs={epochs}",
        "~logger",
        "~callbacks",
    )

    table = run.datamodule.train
    usual = torch.nn.Linear(3, 2)
    torch.nn.init.zeros_(usual.weight), torch.nn.init.zeros_(usual.bias)
    optimizer = torch.optim.SGD(usual.parameters(), lr=lr)
    for epoch in range(epochs):  # the template's order: a permutation seeded by seed + epoch
        order = torch.randperm(len(table), generator=torch.Generator().manual_seed(seed + epoch)).tolist()
        loader = DataLoader(TensorDataset(table.features, table.targets), batch_size=batch_size, sampler=order)
        for features, targets in loader:
            optimizer.zero_grad()
            torch.nn.functional.mse_loss(usual(features), targets).backward()
            optimizer.step()

    torch.testing.assert_close(run.model.linear.weight, usual.weight)
    torch.testing.assert_close(run.model.linear.bias, usual.bias)


def test_gradient_clipping_bounds_each_step(train_with):
    # Raw t_u at lr 1e-2 diverges at once (the book's lesson); with the gradient's norm clipped to 1,
    # each step moves the weights by at most lr · 1.
    run = train_with(
        "experiment=dlwpt_thermometer", "data.normalize=none", "trainer.gradient_clip_val=1", "trainer.max_epochs=3"
    )

    moved = torch.cat([run.model.linear.weight.flatten() - 1.0, run.model.linear.bias.flatten()])
    assert 0 < moved.norm() <= 3 * 1e-2 + 1e-6


def test_the_tensorboard_hint_points_at_where_the_run_is(train_with, tmp_path, monkeypatch):
    run = train_with("trainer.max_epochs=1")
    assert f"TensorBoard:   tensorboard --logdir {tmp_path}" in summarize(run, tmp_path)  # a run outside ./logs

    monkeypatch.chdir(tmp_path.parent)  # a run under ./logs: all of them, to compare
    assert "tensorboard --logdir logs" in summarize(run, tmp_path.parent / "logs" / "train" / "run")

    quiet = train_with("trainer.max_epochs=1", "~logger", f"output_dir={tmp_path / 'quiet'}")
    assert "TensorBoard:" not in summarize(quiet, tmp_path / "quiet")  # no events written, no hint
