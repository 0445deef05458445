"""The least-squares statistics against statsmodels' OLS, the independent reference (a test-only dependency)."""

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import torch
from statsmodels.stats.outliers_influence import variance_inflation_factor
from statsmodels.stats.stattools import durbin_watson, jarque_bera

import linreg.data.datamodule as datamodule_code
from linreg.data import CsvDataModule, InMemoryDataModule, Table
from linreg.intervals import PredictionIntervals
from linreg.least_squares import TrainingSums
from linreg.statistics import Solution, fit_statistics

RTOL = 1e-6


def generated_table(kind: str, rows: int = 300, seed: int = 0) -> Table:
    """Features far from zero (the statistics undo the normalization's shift and scale), two targets."""
    rng = np.random.default_rng(seed)
    x = rng.normal(5.0, 2.0, size=(rows, 4))
    if kind == "correlated":  # a shared factor: variance inflation factors in the hundreds
        x = 5.0 + 2.0 * (0.1 * rng.normal(size=(rows, 4)) + rng.normal(size=(rows, 1)))
    if kind == "constant":  # a column the intercept already is
        x[:, 2] = 3.0
    weight = np.array([[1.5, -2.0, 0.5, 0.0], [0.2, 0.1, -0.3, 0.05]])
    y = x @ weight.T + np.array([10.0, -1.0]) + rng.standard_t(5, size=(rows, 2)) * [2.0, 0.3]
    return Table(
        torch.tensor(x, dtype=torch.float32),
        torch.tensor(y, dtype=torch.float32),
        ["a", "b", "c", "d"],
        ["y", "z"],
    )


def statistics_of(table: Table, val_fraction: float = 0.0, ci: float = 0.95):
    datamodule = InMemoryDataModule(table, val_fraction=val_fraction, normalize_targets=True, seed=3)
    datamodule.setup("fit")
    trained = (torch.zeros(2, 4, dtype=torch.float64), torch.zeros(2, dtype=torch.float64))
    solution = Solution.of(datamodule.training_sums.equations, datamodule.train)
    return fit_statistics(solution, datamodule.train, trained, ci), datamodule.train


def training_rows(train: Table) -> tuple[np.ndarray, np.ndarray]:
    """The training split's cells in file order (the order the residual diagnostics read), as float64."""
    rows = torch.arange(len(train)) if train.rows is None else train.rows.sort().values
    return train.all_features[rows].double().numpy(), train.all_targets[rows].double().numpy()


def coefficient_rows(statistics, target: str) -> dict[str, dict]:
    return {row["feature"]: row for row in statistics.coefficients if row["target"] == target}


@pytest.mark.parametrize("kind", ["plain", "correlated"])
@pytest.mark.parametrize("val_fraction", [0.0, 0.25])
def test_every_statistic_matches_statsmodels(kind, val_fraction):
    statistics, train = statistics_of(generated_table(kind), val_fraction, ci=0.9)
    x, y = training_rows(train)
    exog = sm.add_constant(x, prepend=False)  # the features, then the bias: the order of coefficients.csv

    for j, target in enumerate(["y", "z"]):
        ols = sm.OLS(y[:, j], exog).fit()
        rows = coefficient_rows(statistics, target)
        ours = np.array([[rows[f][k] for f in ["a", "b", "c", "d", "bias"]] for k in ("estimate", "std_error", "t")])
        np.testing.assert_allclose(ours, np.array([ols.params, ols.bse, ols.tvalues]), rtol=RTOL)
        p_values = [rows[f]["p_value"] for f in ["a", "b", "c", "d", "bias"]]
        np.testing.assert_allclose(p_values, ols.pvalues, rtol=RTOL, atol=1e-300)
        intervals = [[rows[f]["ci_low"], rows[f]["ci_high"]] for f in ["a", "b", "c", "d", "bias"]]
        np.testing.assert_allclose(intervals, ols.conf_int(alpha=0.1), rtol=RTOL)

        fit = statistics.targets[target]
        jb, jb_p, skew, kurtosis = jarque_bera(ols.resid)
        expected = {
            "r2": ols.rsquared,
            "adj_r2": ols.rsquared_adj,
            "f_statistic": ols.fvalue,
            "f_p_value": ols.f_pvalue,
            "log_likelihood": ols.llf,
            "aic": ols.aic,
            "bic": ols.bic,
            "df_model": ols.df_model,
            "df_resid": ols.df_resid,
            "durbin_watson": durbin_watson(ols.resid),
            "jarque_bera": jb,
            "jarque_bera_p_value": jb_p,
            "skew": skew,
            "kurtosis": kurtosis,
        }
        for key, value in expected.items():
            assert getattr(fit, key) == pytest.approx(value, rel=RTOL, abs=1e-300), key
    assert statistics.condition_number == pytest.approx(ols.condition_number, rel=RTOL)
    vif = [variance_inflation_factor(exog, i) for i in range(4)]
    np.testing.assert_allclose(list(statistics.vif.values()), vif, rtol=RTOL)
    if kind == "correlated":
        assert statistics.collinear() == ["a", "b", "c", "d"] and min(vif) > 50


def test_a_constant_feature_is_left_to_the_bias_and_the_rest_matches_statsmodels():
    statistics, train = statistics_of(generated_table("constant"))
    x, y = training_rows(train)
    varying = sm.add_constant(np.delete(x, 2, axis=1), prepend=False)

    for j, target in enumerate(["y", "z"]):
        ols = sm.OLS(y[:, j], varying).fit()
        rows = coefficient_rows(statistics, target)
        for feature, k in (("a", 0), ("b", 1), ("d", 2), ("bias", 3)):
            assert rows[feature]["estimate"] == pytest.approx(ols.params[k], rel=RTOL)
            assert rows[feature]["std_error"] == pytest.approx(ols.bse[k], rel=RTOL)
        assert all(np.isnan(rows["c"][key]) for key in ("estimate", "std_error", "p_value"))  # (R's NA)
        assert statistics.aliased == {"c": "constant in the training rows"}
        fit = statistics.targets[target]
        assert (fit.df_model, fit.r2, fit.aic) == (
            ols.df_model,
            pytest.approx(ols.rsquared, rel=RTOL),
            pytest.approx(ols.aic, rel=RTOL),
        )
        # statsmodels given the constant column itself as the intercept: the same fit, the intercept in c.
        as_intercept = sm.OLS(y[:, j], x).fit()
        assert as_intercept.params[2] * 3.0 == pytest.approx(rows["bias"]["estimate"], rel=RTOL)
    assert np.isnan(statistics.vif["c"])


@pytest.mark.parametrize("kind", ["plain", "correlated", "constant", "origin"])
def test_prediction_intervals_are_statsmodels_obs_intervals(kind):
    table = generated_table(kind)
    datamodule = InMemoryDataModule(table, val_fraction=0.25, normalize_targets=True, seed=3)
    datamodule.setup("fit")
    intervals = PredictionIntervals(4, 2)
    intervals.fit(Solution.of(datamodule.training_sums.equations, datamodule.train, intercept=kind != "origin"))
    x, y = training_rows(datamodule.train)
    new_rows = datamodule.val.features  # rows the fit has not seen
    half_width = intervals.half_width(new_rows, 0.9).numpy()

    keep = [0, 1, 3] if kind == "constant" else [0, 1, 2, 3]  # (statsmodels: the constant column is the intercept)
    for j in range(2):
        if kind == "origin":  # a model without an intercept (model.net.bias=false): y ~ 0 + x
            ols, exog = sm.OLS(y[:, j], x).fit(), new_rows.double().numpy()
        else:
            ols = sm.OLS(y[:, j], sm.add_constant(x[:, keep], prepend=False)).fit()
            exog = sm.add_constant(new_rows.double().numpy()[:, keep], prepend=False, has_constant="add")
        frame = ols.get_prediction(exog).summary_frame(alpha=0.1)
        np.testing.assert_allclose(half_width[:, j], (frame.obs_ci_upper - frame.obs_ci_lower) / 2, rtol=RTOL)


def test_a_table_too_large_to_keep_in_float64_gets_its_statistics_from_the_values_as_read(tmp_path, monkeypatch):
    # Column a varies by 0.01 around 1e4, where float32 steps by 0.001: a float32 copy blurs it.
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2000, 3)) * [1e-2, 1.0, 1e3] + [1e4, 0.0, 7.0]
    y = x @ [2.0, -1.0, 3e-3] + 0.01 * rng.normal(size=2000) + 1e4
    pd.DataFrame(np.c_[x, y], columns=["a", "b", "c", "y"]).to_parquet(tmp_path / "wide.parquet")

    def estimates(precise_cells: int) -> tuple[CsvDataModule, list[float]]:
        monkeypatch.setattr(datamodule_code, "PRECISE_CELLS", precise_cells)
        datamodule = CsvDataModule(str(tmp_path / "wide.parquet"), targets="y", val_fraction=0.2)
        datamodule.setup("fit")
        solution = Solution.of(datamodule.training_sums.equations, datamodule.train)
        return datamodule, [row["estimate"] for row in fit_statistics(solution, datamodule.train, None).coefficients]

    kept, in_float64 = estimates(1 << 22)  # (the whole table kept in float64 too)
    read, as_read = estimates(10)  # (only its float32 copy kept: the sums gathered while it was read)
    assert kept.train.as_written is not None and read.train.as_written is None and read.read_sums is not None
    rows = read.train.file_positions().numpy()  # (the laid-out table's training rows, as the file holds them)
    ols = sm.OLS(y[rows], sm.add_constant(x[rows], prepend=False)).fit()
    np.testing.assert_allclose(in_float64, ols.params, rtol=1e-9)
    np.testing.assert_allclose(as_read, ols.params, rtol=1e-9)
    float32_copy = Solution.of(TrainingSums.of(read.train).equations, read.train)  # (what the sums were before)
    assert abs(float32_copy.weight[0, 0] / ols.params[0] - 1) > 1e-6  # (2e-5: float32 kept a few digits)
