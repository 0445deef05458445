"""The verdict: default runs reach least squares, runs that miss are told so with the likely fix, and still end ok."""

import json
import logging

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import CONFIGS
from hydra import compose, initialize_config_dir

from linreg.convergence import TrainingFacts, judge
from linreg.errors import ConfigError
from linreg.fit import fit
from linreg.predict import predict
from linreg.train import train

CORRELATED = ["data=synthetic", "data.n_samples=4000", "data.correlation=0.9995"]  # condition number ≈ 128


@pytest.mark.parametrize(
    "data",
    [
        ["data=thermometer"],
        ["data=anscombe"],
        ["data=crops"],
        CORRELATED,
        ["data=synthetic", "data.n_samples=100000", "data.n_features=16", "data.correlation=0.9"],
    ],
    ids=["thermometer", "anscombe", "crops", "correlated", "100k_rows"],
)
def test_a_run_with_only_the_data_chosen_converges(train_with, data):
    run = train_with(*data, "~logger")

    assert run.verdict.converged, run.verdict.sentence()
    assert run.metrics["train/converged"] == 1.0 and run.metrics["train/gap_to_ols"] < 1e-3
    assert run.trainer.current_epoch < 10  # stopped once converged, not after trainer.max_epochs=1000


def test_the_correlated_table_is_ill_conditioned_and_its_collinearity_is_named(make_config, tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="linreg")
    train(make_config(*CORRELATED, "~logger"))

    statistics = json.loads((tmp_path / "statistics.json").read_text())
    assert statistics["condition_number_standardized"] >= 100
    assert json.loads((tmp_path / "status.json").read_text())["converged"] is True
    assert "Nearly collinear features (variance inflation factor ≥ 10): x0 " in caplog.text
    assert "data.exclude" in caplog.text


def test_adam_with_its_defaults_on_raw_targets_misses_says_why_and_still_ends_ok(make_config, tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="linreg")
    # Crops yields are in the tens: Adam's steps of about lr each cannot get there in 100 steps of 1e-3.
    cfg = make_config("data=crops", "optimizer=adam", "optimizer.lr=1e-3", "trainer.max_epochs=100", "~logger")

    objective = train(cfg)

    status = json.loads((tmp_path / "status.json").read_text())
    assert status["status"] == "ok" and status["converged"] is False and status["coefficient_gap"] > 1
    assert objective == pytest.approx(status["metrics"]["train/loss"])  # the verdict informs, it does not fail
    assert "NOT converged" in caplog.text and "data.normalize_targets=true" in caplog.text
    assert status["metrics"]["train/converged"] == 0.0


def test_a_converged_run_records_its_verdict_and_statistics(make_config, tmp_path):
    train(make_config("data=crops", "~logger"))

    status = json.loads((tmp_path / "status.json").read_text())
    assert status["converged"] is True and 0 <= status["coefficient_gap"] < 1e-3
    coefficients = pd.read_csv(tmp_path / "coefficients.csv")
    assert list(coefficients.columns) == [
        "target",
        "feature",
        "estimate",
        "std_error",
        "t",
        "p_value",
        "ci_low",
        "ci_high",
        "trained",
    ]
    assert set(coefficients["target"]) == {"apples", "oranges"} and len(coefficients) == 2 * 4  # 3 features, bias
    assert (coefficients["trained"] - coefficients["estimate"]).abs().max() < 1e-2
    statistics = json.loads((tmp_path / "statistics.json").read_text())
    assert {"r2", "adj_r2", "f_statistic", "aic", "bic", "durbin_watson"} <= set(statistics["targets"]["apples"])


def test_the_convergence_callback_can_be_told_to_train_every_epoch(train_with):
    run = train_with("optimizer=sgd", "callbacks.convergence.stop=false", "trainer.max_epochs=40", "~logger")

    assert run.trainer.current_epoch == 40 and run.verdict.converged


def test_lr_auto_is_for_gradient_descent_only(train_with):
    with pytest.raises(ConfigError, match=r"optimizer.lr=auto is a step size for gradient descent"):
        train_with("optimizer=adam", "optimizer.lr=auto")


def test_the_verdict_is_left_out_where_least_squares_is_not_the_aim(train_with):
    run = train_with("loss=l1", "trainer.max_epochs=3", "~logger")
    assert run.verdict.converged is None and "loss=mse" in run.verdict.sentence()


FACTS = dict(epochs=100, steps=100, lr=0.1, optimizer="SGD", full_batch=True, scheduled=False, normalize="standardize")
FACTS |= dict(normalize_targets=False, largest_coefficient=3.0)


@pytest.mark.parametrize(
    ("gaps", "facts", "advice"),
    [
        ([0.5 * 0.97**i for i in range(100)], {}, "more epochs (trainer.max_epochs=2"),
        ([0.1] * 50 + [0.1 * 1.1**i for i in range(50)], {}, "a lower learning rate"),
        ([0.05 + 0.001 * (i % 3) for i in range(100)], {"full_batch": False}, "a decaying schedule"),
        ([0.5 * 0.9999**i for i in range(100)], {}, "a higher learning rate"),
        ([5.0] * 100, {"optimizer": "Adam", "lr": 1e-3}, "data.normalize_targets=true"),
        ([], {}, "optimizer=sgd with optimizer.lr=auto"),
        ([0.5 * 0.97**i for i in range(100)], {"normalize": "none"}, "data.normalize=standardize"),
        ([0.01] * 100, {"condition_number": 3e3}, "trainer.precision=64-true: the rounding of trainer.precision=32"),
        ([0.01] * 100, {"condition_number": 1e9, "precision": "64-true"}, "none in training: even float64's"),
    ],
    ids=[
        "still_falling",
        "rising",
        "noise_floor",
        "stalled",
        "adaptive_reach",
        "no_history",
        "raw_inputs",
        "float32_too_coarse",
        "too_ill_conditioned",
    ],
)
def test_a_miss_is_told_the_likely_fix_of_its_gap_history(gaps, facts, advice):
    verdict = judge(gaps[-1] if gaps else 0.2, 1e-3, TrainingFacts(gaps=gaps, **(FACTS | facts)))

    assert verdict.converged is False and advice in verdict.sentence()


def test_predict_adds_least_squares_prediction_intervals(train_with, tmp_path):
    run = train_with("data=crops", "~logger")
    rows = pd.DataFrame({"temperature": [73.0, 91.0], "rainfall": [67.0, 88.0], "humidity": [43.0, 64.0]})
    rows.to_csv(tmp_path / "new.csv", index=False)

    with initialize_config_dir(str(CONFIGS), version_base="1.3"):
        cfg = compose(
            "predict",
            overrides=[
                f"ckpt_path={tmp_path}",
                f"input={tmp_path / 'new.csv'}",
                f"output={tmp_path / 'out.csv'}",
                f"output_dir={tmp_path / 'predict'}",
                "interval=0.9",
            ],
        )
    written = pd.read_csv(predict(cfg))

    assert [c for c in written.columns if c.startswith("apples")] == [
        "apples_predicted",
        "apples_lower",
        "apples_upper",
    ]
    assert (written["apples_lower"] < written["apples_predicted"]).all()
    assert (written["apples_predicted"] < written["apples_upper"]).all()
    half = run.model.intervals.half_width(torch.tensor(rows.to_numpy(), dtype=torch.float32), 0.9)
    assert (written["oranges_upper"] - written["oranges_predicted"]).to_numpy() == pytest.approx(
        half[:, 1].numpy(), rel=1e-5
    )


def test_heavy_ball_sgd_reaches_least_squares_on_correlated_features(train_with):
    # Standardized condition number 30, about 900 for the Hessian: a bit over a hundred full-batch steps.
    correlated = ["data=synthetic", "data.n_samples=2000", "data.correlation=0.99"]
    run = train_with(*correlated, "optimizer=sgd", "~logger")  # lr=auto, momentum=auto

    assert run.verdict.converged and run.trainer.current_epoch < 300
    assert 0.5 < run.model.optimizers().param_groups[0]["momentum"] < 1 and run.model.hparams.lr > 0


def test_a_momentum_out_of_range_is_named(train_with):
    with pytest.raises(ConfigError, match=r"optimizer.momentum=1.5 is out of range"):
        train_with("optimizer=sgd", "optimizer.momentum=1.5")


def correlated_table(path, rows: int, features: int, shared: float, seed: int) -> list[str]:
    """A CSV whose features share a common factor (pairwise correlation `shared`), with coefficients 0.5 to 2 in
    size, so that each is well away from 0; returns the feature names."""
    generator = np.random.default_rng(seed)
    common = generator.normal(size=(rows, 1))
    x = np.sqrt(shared) * common + np.sqrt(1 - shared) * generator.normal(size=(rows, features))
    weight = generator.uniform(0.5, 2.0, size=features) * generator.choice([-1, 1], size=features)
    names = [f"x{j}" for j in range(features)]
    y = x @ weight + 3.0 + generator.normal(size=rows)
    pd.DataFrame(x, columns=names).assign(y=y).to_csv(path, index=False)
    return names


@pytest.mark.parametrize(
    ("rows", "features", "shared"), [(1000, 5, 0.995), (300, 19, 0.9)], ids=["correlation_0.995", "300x19"]
)
def test_a_default_run_on_correlated_columns_has_least_squares_coefficients_or_says_why_not(
    make_config, tmp_path, rows, features, shared
):
    names = correlated_table(tmp_path / "table.csv", rows, features, shared, seed=features)
    data = ["data=csv", f"data.path={tmp_path / 'table.csv'}", "data.targets=[y]", "~logger", "~callbacks.plots"]
    run = fit(make_config(*data))

    table = pd.read_csv(tmp_path / "table.csv")
    correlation = np.corrcoef(table[names].to_numpy(), rowvar=False)[np.triu_indices(len(names), 1)]
    assert correlation.min() >= (0.99 if shared > 0.99 else 0.8)
    trained, optimum = run.model.equation(), run.statistics.equation()
    relative = max(float(((a - b).abs() / b.abs()).max()) for a, b in zip(trained, optimum, strict=True))
    assert run.verdict.converged is True or "Likely fix" in run.verdict.sentence()
    if run.verdict.converged:
        assert relative < 1e-3, (relative, run.verdict.sentence())
