"""Numbers an analyst can cite: the NIST StRD linear least-squares suite through `data=csv`, against its certified
values (tests/data/nist: the sets as NIST writes them, a polynomial's powers as columns, and certified.json).

Accuracy is counted as NIST and McCullough do: the log relative error, the number of correct significant digits
(15 at most; against a certified 0, the digits of the absolute error)."""

import json
import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd
from conftest import CONFIGS
from hydra import compose, initialize_config_dir

from linreg.train import train

NIST = Path(__file__).parent / "data" / "nist"
CERTIFIED = json.loads((NIST / "certified.json").read_text())


def correct_digits(value: float, certified: float) -> float:
    if value == certified:
        return 15.0
    if certified == 0:
        return min(15.0, max(0.0, -math.log10(abs(value))))
    return min(15.0, max(0.0, -math.log10(abs(value - certified) / abs(certified))))


def fitted(table: Path, output_dir: Path, *overrides: str) -> tuple[pd.DataFrame, dict]:
    """coefficients.csv and statistics.json of `scripts/train.py data=csv data.path=<table> data.targets=[y]`."""
    settings = [f"data.path={table}", "data.targets=[y]", "data.val_fraction=0", "print_config=none"]
    with initialize_config_dir(str(CONFIGS), version_base="1.3"):
        # (The statistics do not depend on training, which gets few epochs: Filip's float32 one never converges.)
        quiet = ["~logger", "~callbacks.plots", "~callbacks.progress_bar", "trainer.max_epochs=1"]
        cfg = compose("train", overrides=["data=csv", *settings, *quiet, *overrides])
    cfg.output_dir = str(output_dir)
    train(cfg)
    statistics = json.loads((output_dir / "statistics.json").read_text())
    return pd.read_csv(output_dir / "coefficients.csv").set_index("feature"), statistics


def digits_of(name: str, tmp_path: Path) -> dict[str, float]:
    """The fewest correct digits of the estimates, of their standard errors, and those of the residual sd and R²."""
    certified = CERTIFIED[name]
    through_origin = [] if certified["intercept"] else ["model.net.bias=false"]  # NoInt1, NoInt2: y ~ 0 + x
    rows, statistics = fitted(NIST / f"{name}.csv", tmp_path / name, *through_origin)
    order = (["bias"] if certified["intercept"] else []) + certified["features"]
    fit = statistics["targets"]["y"]

    def fewest(column: str, key: str) -> float:
        pairs = zip(rows.loc[order, column], map(float, certified[key]), strict=True)
        return min(correct_digits(got, want) for got, want in pairs)

    return {
        "estimates": fewest("estimate", "estimates"),
        "std_errors": fewest("std_error", "std_errors"),
        "residual_sd": correct_digits(fit["residual_std"], float(certified["residual_sd"])),
        "r2": correct_digits(fit["r2"], float(certified["r2"])),
    }


def test_the_nist_linear_suite_is_fitted_to_the_digits_its_data_carries(tmp_path):
    digits = {name: digits_of(name, tmp_path) for name in CERTIFIED}

    estimates = [d["estimates"] for d in digits.values()]
    assert np.mean(estimates) >= 12, digits  # statsmodels: 10.8, numpy's lstsq 9.3 on the same files
    assert digits["Filip"]["estimates"] >= 7  # a degree-10 polynomial: float64 input itself allows 7.9
    for name, found in digits.items():
        if name != "Filip":
            assert min(found["std_errors"], found["residual_sd"], found["r2"]) >= 10, (name, found)


def test_float64_training_reaches_the_certified_values_themselves(tmp_path):
    for name in ("Longley", "Norris"):
        rows, _ = fitted(
            NIST / f"{name}.csv",
            tmp_path / name,
            "trainer.precision=64-true",
            "convergence.rtol=1e-10",
            "trainer.max_epochs=20",
        )
        certified = CERTIFIED[name]
        pairs = zip(rows.loc[["bias", *certified["features"]], "trained"], certified["estimates"], strict=True)
        assert min(correct_digits(trained, float(value)) for trained, value in pairs) >= 9, name


def test_values_float32_would_round_are_named_and_the_statistics_keep_their_digits(tmp_path, caplog):
    _, statistics = fitted(NIST / "Wampler5.csv", tmp_path / "run")

    assert "Training reads" in caplog.text and "which rounds y (by up to 1)" in caplog.text  # (2.6e7 > 2²⁴)
    assert correct_digits(statistics["targets"]["y"]["residual_std"], 23601450.2379268) >= 10


def test_a_column_three_times_another_is_named_and_gets_no_p_value(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    rows = pd.read_csv(NIST / "Longley.csv").assign(triple=lambda table: 3 * table.x3)
    rows = rows.assign(mixed=lambda table: table.x1 + 2 * table.x2 - table.x4)
    rows.to_csv(tmp_path / "longley3.csv", index=False)
    table, statistics = fitted(tmp_path / "longley3.csv", tmp_path / "run")

    assert statistics["aliased"] == {
        "triple": "3 × x3 (an exact multiple)",
        "mixed": "a linear combination of x1, x2, x4",
    }
    assert (
        "Least squares cannot tell some features from the others: triple is 3 × x3 (an exact multiple)" in caplog.text
    )
    summary = next(record.message for record in caplog.records if "least squares" in record.message)
    lines = summary.split("least squares", 1)[1].splitlines()  # the equation the summary prints: coefficients.csv's
    for feature in ["x1", "x3", "triple", "bias"]:
        printed = next(line.split()[-1] for line in lines if line.split() and line.split()[0] == feature)
        assert printed == ("aliased" if feature == "triple" else f"{table.loc[feature, 'estimate']:#.4g}".rstrip("."))
    assert table.loc["triple", ["estimate", "std_error", "t", "p_value"]].isna().all()
    assert statistics["targets"]["y"]["df_model"] == 6  # the identified columns
    certified = CERTIFIED["Longley"]
    for feature, value in zip(["bias", *certified["features"]], certified["estimates"], strict=True):
        assert correct_digits(table.loc[feature, "estimate"], float(value)) >= 10
