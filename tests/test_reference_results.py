"""The seed notebooks' numbers, reproduced by the experiment configs."""

import pandas as pd
import pytest
import torch
from conftest import events_of

EVERY_EPOCH = "trainer.log_every_n_steps=1"  # short epochs: a point for every one, not every 50 steps
# What a run draws, writes and watches does not change what it trains: the runs of thousands of one-step epochs
# leave the logger and the callbacks out (Lightning calls each callback at every hook of every epoch), to keep the
# suite short. The other tests check the logs, plots, checkpoints and stops.
UNLOGGED = ("~logger", "~callbacks")


def test_book_thermometer_fit_ends_at_the_books_loss_and_weights(train_with):
    run = train_with("experiment=dlwpt_thermometer", *UNLOGGED)

    assert run.metrics["train/loss"] == pytest.approx(2.927648, rel=1e-4)
    w, b = run.model.linear.weight.item(), run.model.linear.bias.item()  # normalized units: t_un = 0.1·t_u
    assert (w, b) == (pytest.approx(5.3671, abs=1e-4), pytest.approx(-17.3012, abs=1e-4))
    weight, bias = run.model.equation()  # original units
    assert weight.item() == pytest.approx(0.53671, abs=1e-5)
    assert bias.item() == pytest.approx(-17.3012, abs=1e-4)


def test_book_first_epochs_without_normalization_follow_the_book(train_with, tmp_path):
    train_with(
        "experiment=dlwpt_thermometer", "data.normalize=none", "optimizer.lr=1e-4", "trainer.max_epochs=5", EVERY_EPOCH
    )

    events = events_of(tmp_path)
    losses = [event.value for event in events.Scalars("train/loss")]
    assert losses == pytest.approx([1763.8848, 323.0905, 78.9296, 37.5528, 30.5403], rel=1e-4)


def test_anscombe_with_rmsprop_ends_near_least_squares(train_with):
    run = train_with("experiment=anscombe_rmsprop", *UNLOGGED)

    weight, bias = run.model.equation()
    assert weight.item() == pytest.approx(0.50009, abs=2e-3)
    assert bias.item() == pytest.approx(3.00009, abs=2e-2)
    assert run.metrics["train/loss"] == pytest.approx(1.25115, rel=1e-3)


def test_crops_in_batches_of_two_learn_both_targets(train_with, tmp_path):
    run = train_with("experiment=crops_sgd", "logger=csv", EVERY_EPOCH)

    losses = pd.read_csv(tmp_path / "metrics.csv")["train/loss"].dropna()
    assert len(losses) == 100
    assert losses.iloc[-1] < losses.iloc[0] / 20
    assert run.model(torch.tensor([[73.0, 67.0, 43.0]])).shape == (1, 2)
