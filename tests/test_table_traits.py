"""Traits of public tables that tripped a newcomer (issue 29): columns a person would not use as features, dates
read as years, and outputs in the input's own conventions. Each table is built here."""

import copy
import importlib.util
import json
import logging
import stat

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import job_config

from linreg.data import CsvDataModule
from linreg.data.columns import plan_fault
from linreg.errors import ConfigError, exit_explaining
from linreg.evaluate import evaluate
from linreg.export import export, serving_plan
from linreg.predict import predict
from linreg.rundir import OWNER, claim
from linreg.runtime import UMASK
from linreg.serving import encode_rows


def module(path, **settings) -> CsvDataModule:
    datamodule = CsvDataModule(path=str(path), **{"val_fraction": 0, **settings})
    datamodule.setup("fit")
    return datamodule


def longley_like(tmp_path) -> str:
    """Longley's shape: `rownames` repeats `Year`, and a date column whose month never varies."""
    rng = np.random.default_rng(0)
    years = np.arange(1947, 1963)
    frame = pd.DataFrame(
        {
            "rownames": years,
            "Year": years,
            "Census": [f"{year}-01-01" for year in years],
            "GNP": rng.uniform(200, 600, len(years)).round(1),
            "Employed": rng.uniform(60, 70, len(years)).round(2),
        }
    )
    frame.to_csv(tmp_path / "longley.csv", index=False)
    return str(tmp_path / "longley.csv")


def test_a_repeated_column_and_a_date_part_that_never_varies_are_left_out_in_one_line(tmp_path, caplog):
    datamodule = module(longley_like(tmp_path), targets="Employed")

    assert datamodule.feature_names == ["rownames", "Census.days", "Census.weekday", "GNP"]
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    left_out = [line for line in warnings if line.startswith("Left out feature(s)")]
    assert len(left_out) == 1 and "\n" not in left_out[0]
    assert "Year (equal to rownames in every training row; data.exclude=[rownames] keeps it)" in left_out[0]
    assert "Census.month (1 in every training row)" in left_out[0]
    features = datamodule.train.features.numpy()
    assert np.linalg.matrix_rank(np.column_stack([features, np.ones(len(features))])) == 5  # full rank now

    kept = module(longley_like(tmp_path), targets="Employed", exclude=["rownames"])
    assert kept.feature_names == ["Year", "Census.days", "Census.weekday", "GNP"]


def test_a_date_can_be_read_as_its_year_and_one_feature_of_a_column_excluded(tmp_path):
    path = longley_like(tmp_path)
    as_year = module(path, targets="Employed", exclude=["rownames", "Year"], date_parts=["year"])
    assert as_year.feature_names == ["Census.year", "GNP"]
    assert as_year.train.features[:, 0].tolist() == list(range(1947, 1963))

    one_part = module(path, targets="Employed", exclude=["rownames", "Census.weekday"])
    assert one_part.feature_names == ["Year", "Census.days", "GNP"]

    with pytest.raises(ConfigError, match=r"'Census\.hour', which is no feature of column Census.*Census\.days"):
        module(path, targets="Employed", exclude=["Census.hour"])
    with pytest.raises(ConfigError, match=r"'Censu\.days' \(data\.exclude; did you mean 'Census'\?\)"):
        module(path, targets="Employed", exclude=["Censu.days"])


def test_a_text_id_column_is_refused_with_the_hint_and_the_quoting_hint_only_where_names_need_it(tmp_path):
    cars = pd.DataFrame({"model": [f"Car {i}" for i in range(32)], "wt": np.linspace(1.5, 5.4, 32)})
    cars.assign(mpg=30 - 3 * cars["wt"]).to_csv(tmp_path / "cars.csv", index=False)
    with pytest.raises(ConfigError, match=r"different value in almost every training row \(32 in 32.*data\.exclude"):
        module(tmp_path / "cars.csv", targets="mpg")

    with pytest.raises(ConfigError) as error:
        module(tmp_path / "cars.csv", targets="mpg", exclude=["modell"])
    assert "did you mean 'model'" in str(error.value) and "quotes" not in str(error.value)


def test_a_column_of_rare_levels_leaves_the_plan(tmp_path):
    frame = pd.DataFrame({"x": np.arange(12.0) % 5, "tag": list("abcdefabcdef"), "y": np.arange(12.0)})
    frame.to_csv(tmp_path / "t.csv", index=False)
    datamodule = module(tmp_path / "t.csv", targets="y")
    assert [entry["column"] for entry in datamodule.columns["features"]] == ["x"]  # predict.py needs no `tag`


def test_predict_writes_the_delimiter_and_decimal_mark_of_its_input(train_with, tmp_path):
    frame = pd.DataFrame({"a": [18.0, 19.5, 21.25, 22.0, 25.5], "y": [36.7, 37.2, 38.9, 39.5, 42.0]})
    frame.to_csv(tmp_path / "t.csv", sep=";", decimal=",", index=False)
    train_with("data=csv", f"data.path={tmp_path / 't.csv'}", "data.targets=y", "data.decimal=','")

    def predicted(*settings: str) -> str:
        name = f"p{len(list(tmp_path.glob('p*.csv')))}.csv"
        cfg = job_config("predict", tmp_path, f"input={tmp_path / 't.csv'}", f"output={tmp_path / name}", *settings)
        return predict(cfg).read_text()

    text = predicted()
    assert text.splitlines()[0] == "a;y;y_predicted" and text.splitlines()[1].startswith("18,0;36,7;3")
    assert "," in text.splitlines()[1].split(";")[2]
    assert predicted("sep=','", "decimal=.").splitlines()[1].startswith('"18,0","36,7",36.')  # (cells as written)
    with pytest.raises(ConfigError, match="both between fields and as the decimal mark"):
        predicted("sep=','")


def test_a_failed_run_says_why_in_its_log_and_claims_its_directory_with_a_plain_files_mode(tmp_path):
    handler = logging.FileHandler(tmp_path / "train.log")
    logging.getLogger().addHandler(handler)
    try:
        with pytest.raises(SystemExit):
            try:
                raise ConfigError("data.path=x.csv is not a file.")
            except ConfigError as error:
                exit_explaining(error)
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()
    assert "Error: data.path=x.csv is not a file." in (tmp_path / "train.log").read_text()

    claim(tmp_path / "run")
    assert stat.S_IMODE((tmp_path / "run" / OWNER).stat().st_mode) == 0o666 & ~UMASK


def diamonds(n_rows: int = 300) -> pd.DataFrame:
    """Prices whose log is quadratic in carat, with a level and a slope per cut (Ideal: the most common)."""
    rng = np.random.default_rng(1)
    carat = rng.choice(np.arange(2, 20) / 8, n_rows)
    cut = rng.choice(["Ideal", "Good", "Fair"], n_rows, p=[0.5, 0.3, 0.2])
    level, slope = pd.Series(cut).map({"Ideal": 0.3, "Good": 0.1, "Fair": 0.0}), pd.Series(cut).map({"Good": -0.1})
    log_price = 6 + 1.5 * carat - 0.2 * carat**2 + level + slope.fillna(0.2) * carat + rng.normal(0, 0.1, n_rows)
    return pd.DataFrame({"carat": carat, "cut": cut, "price": np.round(np.exp(log_price))})


FORMULA = "np.log(price) ~ carat * cut + I(carat ** 2)"


def test_a_formula_fits_what_statsmodels_fits_and_predict_eval_and_export_apply_it_alike(train_with, tmp_path):
    smf = pytest.importorskip("statsmodels.formula.api")
    onnxruntime = pytest.importorskip("onnxruntime")
    frame = diamonds()
    frame.to_csv(tmp_path / "diamonds.csv", index=False)
    run = train_with(
        "data=csv", f"data.path={tmp_path / 'diamonds.csv'}", f"data.formula='{FORMULA}'", "data.val_fraction=0"
    )
    assert run.datamodule.target_names == ["np.log(price)"]

    reference = smf.ols("np.log(price) ~ carat * C(cut, Treatment('Ideal')) + I(carat ** 2)", frame).fit().params
    ours = {row["feature"]: row["estimate"] for row in run.statistics.coefficients}
    names = {"Intercept": "bias", "C(cut, Treatment('Ideal'))": "cut", "[T.": "=", "]": ""}
    for name, value in reference.items():
        for theirs, mine in names.items():
            name = name.replace(theirs, mine)
        assert ours[name] == pytest.approx(value, abs=1e-6), name  # (targets are float32: ~2e-7 apart)
    assert len(ours) == len(reference)
    tampered = copy.deepcopy(run.datamodule.columns)  # (a checkpoint's formula is looked up, never evaluated)
    tampered["formula"]["terms"][0][0]["transform"] = "__import__('os').system"
    assert plan_fault(tampered, run.datamodule.feature_names) == "the column plan's formula is malformed"

    # predict.py: the median price, exp of the predicted log; eval.py: the log scale the model was trained on
    written = pd.read_csv(predict(job_config("predict", tmp_path, f"input={tmp_path / 'diamonds.csv'}")))
    with torch.no_grad():
        log_price = run.model(run.datamodule.train.all_features)[:, 0].double().numpy()
    np.testing.assert_allclose(written["price_predicted"], np.exp(log_price), rtol=1e-5)
    metrics = evaluate(job_config("eval", tmp_path, "ckpt_path=last", f"input={tmp_path / 'diamonds.csv'}", "~logger"))
    assert metrics["test/loss"] == pytest.approx(run.metrics["train/loss"], rel=1e-5)

    files = export(job_config("export", tmp_path, "ckpt_path=last", "formats=[onnx]"))
    description = json.loads(files["description"].read_text())
    assert description["targets"] == ["price"]
    spec = importlib.util.spec_from_file_location("exported_serving", files["encoder"])
    encoder = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(encoder)
    rows = frame.drop(columns="price").to_dict("records")
    session = onnxruntime.InferenceSession(files["onnx"])
    (served,) = session.run(None, {"features": encoder.encode_rows(description, rows)})
    np.testing.assert_allclose(served[:, 0], written["price_predicted"], rtol=1e-5)


@pytest.mark.parametrize(
    "formula, words",
    [
        ("np.log(price) ~ carat - 1", ["leaves out the intercept"]),
        ("price ~ carat +", ["cannot be read", "insuffient arguments"]),
        ("price ~ foo(carat)", ["the term foo(carat) is not one this template reads", "I(column ** k)"]),
        ("price ~ np.log(cut)", ["np.log(cut) takes a column of numbers", "cut is read as a category"]),
        ("price ~ carats", ["'carats' (data.formula; did you mean 'carat'?)"]),
        ("np.log(carat) ~ price", []),  # (fine: every carat is positive)
    ],
)
def test_formula_faults_are_one_sentence(tmp_path, formula, words):
    frame = diamonds(40)
    frame.to_csv(tmp_path / "d.csv", index=False)
    if not words:
        assert module(tmp_path / "d.csv", formula=formula).target_names == ["np.log(carat)"]
        return
    with pytest.raises(ConfigError) as error:
        module(tmp_path / "d.csv", formula=formula)
    for word in words:
        assert word in str(error.value)


def test_a_formula_column_left_out_by_data_exclude_is_named(tmp_path):
    diamonds(40).to_csv(tmp_path / "d.csv", index=False)
    with pytest.raises(ConfigError, match="uses column cut, which data.exclude leaves out"):
        module(tmp_path / "d.csv", formula="price ~ carat + cut", exclude=["cut"])
    partly = module(tmp_path / "d.csv", formula="price ~ carat * cut", exclude=["cut=Fair"])
    (level,) = [name for name in partly.feature_names if name.startswith("cut=")]  # (the reference has none)
    assert partly.feature_names == ["carat", level, f"carat:{level}"] and level != "cut=Fair"


def test_a_log_target_that_is_not_positive_is_named_by_its_line(tmp_path):
    frame = diamonds(40)
    frame.loc[6, "price"] = 0
    frame.to_csv(tmp_path / "d.csv", index=False)
    with pytest.raises(ConfigError, match=r"holds 0 on line 8, where the formula's np\.log\(price\) is undefined"):
        module(tmp_path / "d.csv", formula="np.log(price) ~ carat")


def test_features_left_out_stay_out_in_predict_and_in_served_rows(train_with, tmp_path):
    path = longley_like(tmp_path)
    data = ["data=csv", f"data.path={path}", "data.targets=Employed", "data.val_fraction=0"]
    run = train_with(*data, "trainer.max_epochs=3", "~logger")
    assert run.datamodule.columns["drop"] == ["Year", "Census.month"]

    written = pd.read_csv(predict(job_config("predict", tmp_path, f"input={path}")))
    with torch.no_grad():
        expected = run.model(run.datamodule.train.all_features)[:, 0].numpy()
    np.testing.assert_allclose(written["Employed_predicted"], expected, rtol=1e-6)
    columns = serving_plan(run.datamodule.columns)
    description = {"features": run.datamodule.feature_names, "columns": columns, "input": {"dtype": "float32"}}
    rows = pd.read_csv(path, dtype=str).to_dict("records")
    np.testing.assert_array_equal(encode_rows(description, rows), run.datamodule.train.all_features.numpy())
