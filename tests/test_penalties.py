"""model.l2 (ridge) and model.l1 (lasso): trained and exact optima, against scikit-learn's parameterisations."""

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.linear_model import ElasticNet, Lasso, Ridge

from linreg.errors import ConfigError
from linreg.least_squares import fit_least_squares, solve_training_sums

DATA = ["data=synthetic", "data.n_samples=400", "data.n_features=5", "data.correlation=0.6", "~logger"]


def normalized_training_rows(run) -> tuple[np.ndarray, np.ndarray]:
    """The training split as the model sees it: what scikit-learn must fit to be comparable."""
    rows = run.datamodule.train
    return (
        run.model.feature_normalizer(rows.features).double().numpy(),
        run.model.target_normalizer(rows.targets).double().numpy()[:, 0],
    )


@pytest.mark.parametrize("l2", [0.001, 0.1, 1.0])
def test_ridge_trains_to_scikit_learns_ridge_with_alpha_n_times_l2(train_with, tmp_path, l2):
    run = train_with(*DATA, f"model.l2={l2}", "convergence.rtol=1e-10", "trainer.max_epochs=50")

    x, y = normalized_training_rows(run)
    reference = Ridge(alpha=len(x) * l2).fit(x, y)
    for weight, bias in (
        (run.model.linear.weight, run.model.linear.bias),
        (run.least_squares.weight, run.least_squares.bias),
    ):
        np.testing.assert_allclose(weight.detach().double().numpy()[0], reference.coef_, atol=1e-4)
        assert float(bias.detach()[0]) == pytest.approx(reference.intercept_, abs=1e-4)
    assert run.least_squares.name == "ridge" and run.verdict.gap < 1e-6  # (float32 weights)
    # Stronger ridge, smaller weights: the exact optimum is the ridge fit, not least squares.
    assert (
        run.least_squares.weight.norm()
        < fit_least_squares(
            run.datamodule.train, run.model.feature_normalizer, run.model.target_normalizer
        ).weight.norm()
    )


@pytest.mark.parametrize("l1, l2", [(0.02, 0.0), (0.02, 0.01), (0.2, 0.5)])
def test_the_exact_lasso_and_elastic_net_optima_are_scikit_learns(make_config, l1, l2):
    from linreg.data import SyntheticDataModule  # noqa: F401  (the synthetic table, as the runs see it)
    from linreg.runtime import build

    datamodule = build(make_config(*DATA).data, _convert_="all")
    datamodule.setup("fit")
    normalizers = datamodule.feature_normalizer, datamodule.target_normalizer
    optimum = solve_training_sums(datamodule.training_sums, *normalizers).penalized(l1, l2)
    rows = datamodule.train
    x = datamodule.feature_normalizer(rows.features).double().numpy()
    y = datamodule.target_normalizer(rows.targets).double().numpy()[:, 0]

    if l2:
        reference = ElasticNet(alpha=l1 / 2 + l2, l1_ratio=(l1 / 2) / (l1 / 2 + l2), tol=1e-12, max_iter=100_000)
    else:
        reference = Lasso(alpha=l1 / 2, tol=1e-12, max_iter=100_000)
    reference.fit(x, y)
    np.testing.assert_allclose(optimum.weight.numpy()[0], reference.coef_, atol=1e-7)
    assert float(optimum.bias[0]) == pytest.approx(reference.intercept_, abs=1e-7)


def test_lasso_trained_with_sgd_zeroes_the_weights_of_pure_noise_columns(train_with, tmp_path):
    generator = np.random.default_rng(0)
    columns = {f"signal{i}": generator.normal(size=600) for i in range(3)}
    columns |= {f"noise{i}": generator.normal(size=600) for i in range(5)}
    target = 3 * columns["signal0"] - 2 * columns["signal1"] + columns["signal2"] + 0.5 * generator.normal(size=600)
    pd.DataFrame(columns | {"y": target}).to_csv(tmp_path / "noisy.csv", index=False)

    run = train_with(
        "data=csv",
        f"data.path={tmp_path / 'noisy.csv'}",
        "data.targets=[y]",
        "~logger",
        "optimizer=sgd",
        "model.l1=0.2",
        "trainer.max_epochs=400",
        "convergence.rtol=0.01",  # (SGD at a constant rate: within 1 % of the lasso's coefficients, not 0.01 %)
    )

    weights = dict(zip(run.datamodule.feature_names, run.model.linear.weight[0].tolist(), strict=True))
    assert all(weights[f"noise{i}"] == 0 for i in range(5)), weights  # exactly: the proximal step's zeros
    assert all(abs(weights[f"signal{i}"]) > 0.5 for i in range(3)), weights
    assert (run.least_squares.weight[0, 3:] == 0).all() and run.least_squares.name == "lasso"
    assert run.verdict.converged, run.verdict.sentence()


def test_lasso_with_lbfgs_is_refused_with_what_to_use(train_with):
    with pytest.raises(ConfigError, match="optimizer=sgd"):
        train_with(*DATA, "model.l1=0.1")


def test_the_penalty_is_in_the_training_loss_and_not_in_the_validation_loss(train_with):
    run = train_with(*DATA, "data.val_fraction=0.2", "model.l2=0.5", "convergence.rtol=1e-10", "trainer.max_epochs=50")

    data_loss = run.least_squares.train_equations.loss(run.model.linear.weight, run.model.linear.bias)
    penalty = 0.5 * float((run.model.linear.weight.detach().double() ** 2).sum())
    assert run.metrics["train/loss"] == pytest.approx(data_loss + penalty, rel=1e-4)
    assert run.least_squares.train_loss == pytest.approx(run.metrics["train/loss"], rel=1e-6)
    assert torch.isfinite(torch.tensor(run.metrics["val/loss"]))
