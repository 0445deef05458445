"""The least-squares baseline: numpy's answer, logged, and the gap the optimizer leaves to it."""

import numpy as np
import pytest
import torch
from conftest import GRADIENT_STEPS, events_of

from linreg.least_squares import fit_least_squares
from linreg.runtime import build


def data_of(cfg):
    datamodule = build(cfg.data)
    datamodule.setup("fit")
    return datamodule


def baseline_of(datamodule):
    normalizers = datamodule.feature_normalizer, datamodule.target_normalizer
    least_squares = fit_least_squares(datamodule.train, *normalizers)
    losses = {"train": least_squares.train_loss}
    if len(datamodule.val):
        losses["val"] = least_squares.loss_on(datamodule.val, *normalizers)
    return least_squares, losses


def numpy_least_squares(features: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, float]:
    design = np.column_stack([features, np.ones(len(features))])
    solution, *_ = np.linalg.lstsq(design, targets, rcond=None)
    return solution, float(np.mean((design @ solution - targets) ** 2))


@pytest.mark.parametrize("data", ["thermometer", "anscombe", "crops"])
@pytest.mark.parametrize("normalize", ["none", "standardize"])
def test_the_baseline_is_numpys_least_squares_in_original_units(make_config, data, normalize):
    datamodule = data_of(make_config(f"data={data}", f"data.normalize={normalize}"))
    normalizers = datamodule.feature_normalizer, datamodule.target_normalizer
    least_squares = fit_least_squares(datamodule.train, *normalizers, chunk_rows=2)  # several chunks

    solution, mse = numpy_least_squares(
        datamodule.train.features.double().numpy(), datamodule.train.targets.double().numpy()
    )
    weight, bias = least_squares.equation(*normalizers)
    # Normal equations against numpy's SVD: crops' 5 rows leave the intercept sensitive to rounding.
    np.testing.assert_allclose(weight.numpy(), solution[:-1].T, rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(bias.numpy(), solution[-1], rtol=1e-5, atol=1e-8)
    if normalize == "none":
        assert least_squares.train_loss == pytest.approx(mse, rel=1e-6)


def test_thermometer_reference_numbers(make_config):
    datamodule = data_of(make_config("data.normalize=none"))
    least_squares, losses = baseline_of(datamodule)

    weight, bias = least_squares.equation(datamodule.feature_normalizer, datamodule.target_normalizer)
    assert (weight.item(), bias.item()) == (pytest.approx(0.536772, abs=1e-6), pytest.approx(-17.304786, abs=1e-6))
    assert losses == {"train": pytest.approx(2.927646, abs=1e-6)}


def test_validation_loss_of_the_baseline_is_its_mse_on_the_held_out_rows(make_config):
    datamodule = data_of(make_config("data=synthetic", "data.n_samples=1000", "data.normalize_targets=true"))
    least_squares, losses = baseline_of(datamodule)

    normalizers = datamodule.feature_normalizer, datamodule.target_normalizer
    x, y = normalizers[0](datamodule.val.features.double()), normalizers[1](datamodule.val.targets.double())
    expected = float(((x @ least_squares.weight.T + least_squares.bias - y) ** 2).mean())
    assert losses["val"] == pytest.approx(expected, rel=1e-9)


def test_the_run_logs_the_gap_to_the_baseline_and_it_closes(train_with, tmp_path):
    run = train_with(
        "data.val_fraction=0.2",
        *GRADIENT_STEPS,
        "trainer.max_epochs=60",
        "trainer.log_every_n_steps=1",
    )

    events = events_of(tmp_path)
    assert run.metrics["train/loss"] == pytest.approx(run.least_squares.train_loss, rel=1e-3)
    train_gaps = [event.value for event in events.Scalars("train/gap_to_ols")]
    assert train_gaps[0] > 1 and -1e-6 <= train_gaps[-1] < 1e-3  # relative; the optimum of the same rows: no lower
    assert len(events.Scalars("val/gap_to_ols")) == 60


def test_a_non_mse_loss_logs_no_gap(train_with, tmp_path):
    train_with("loss=l1", "trainer.max_epochs=3")

    curves = set(events_of(tmp_path).Tags()["scalars"])
    assert "train/loss" in curves and not {"train/gap_to_ols", "train/converged"} & curves


def test_collinear_columns_still_get_a_least_squares_answer():
    from linreg.data import Table
    from linreg.normalize import Normalizer

    x = torch.arange(10, dtype=torch.float32)[:, None]
    table = Table(torch.cat([x, 2 * x], dim=1), 3 * x + 1, ["a", "twice_a"], ["y"])
    least_squares = fit_least_squares(table, Normalizer(2), Normalizer(1))

    assert least_squares.train_loss == pytest.approx(0.0, abs=1e-9)
