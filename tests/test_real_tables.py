"""Real tables: formats, column roles, types, categories, dates and blanks, in training, eval and predict."""

import bz2
import decimal
import gzip
import lzma
import zipfile

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from conftest import events_of, job_config

from linreg.data import CsvDataModule
from linreg.errors import ConfigError
from linreg.evaluate import evaluate
from linreg.predict import predict
from linreg.statistics import Solution, fit_statistics
from linreg.train import summarize

CITIES = {"Lyon": 40_000.0, "Paris": 150_000.0, "Nice": 80_000.0, "Brest": -20_000.0}


def houses(n_rows: int = 400, seed: int = 0) -> pd.DataFrame:
    """A messy house-price table: an id, text, dates, true/false, blanks, symbols in names, prices as '192,883'."""
    rng = np.random.default_rng(seed)
    city = rng.choice(["Lyon", "Paris", "Nice"], size=n_rows, p=[0.4, 0.32, 0.28])
    city[rng.choice(n_rows, 4, replace=False)] = "Brest"  # a rare level
    area = rng.uniform(20, 150, n_rows).round(1)
    garden = rng.random(n_rows) < 0.5
    sold = pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 1500, n_rows), unit="D")
    price = 2_000 * area + np.vectorize(CITIES.get)(city) + 15_000 * garden + rng.normal(0, 5_000, n_rows)
    frame = pd.DataFrame(
        {
            "id": np.arange(1, n_rows + 1),
            "city": city,
            "sale date": sold.strftime("%Y-%m-%d"),
            "garden": np.where(garden, "yes", "no"),
            "area m²": area,
            "price (€)": [f"{p:,.0f}" for p in price],
        }
    )
    frame.loc[rng.choice(n_rows, 12, replace=False), "area m²"] = np.nan
    frame.loc[rng.choice(n_rows, 5, replace=False), "city"] = np.nan
    return frame


MESSY = (
    "data=csv",
    "data.targets=['price (€)']",
    "data.exclude=[id]",
    "data.thousands=','",
    "data.impute=median",
    "data.missing_indicator=true",
    "data.test_fraction=0.2",
)


UNITS = "w,y\n12.5 kg,3\n13 kg,5\n14.1 kg,7\n15 kg,9\n16 kg,11\n"  # numbers with a unit: each a rare category


def module(path, **settings) -> CsvDataModule:
    datamodule = CsvDataModule(path=str(path), **{"val_fraction": 0, **settings})
    datamodule.setup("fit")
    return datamodule


def numbers() -> pd.DataFrame:
    return pd.DataFrame({"a": [1.5, 2.25, 3.0, 4.5], "b": [20, 10, 45, 30], "y": [0.5, 1.0, 1.5, 2.0]})


def write_as(frame: pd.DataFrame, path, kind: str):
    """The table in one of the formats a user may have."""
    text = frame.to_csv(index=False)
    writers = {
        "csv": lambda: path.with_suffix(".csv").write_text(text),
        "semicolon": lambda: path.with_suffix(".csv").write_text(frame.to_csv(index=False, sep=";", decimal=",")),
        "tsv": lambda: path.with_suffix(".tsv").write_text(frame.to_csv(index=False, sep="\t")),
        "pipe": lambda: path.with_suffix(".txt").write_text(frame.to_csv(index=False, sep="|")),
        "gz": lambda: path.with_suffix(".csv.gz").write_bytes(gzip.compress(text.encode())),
        "bz2": lambda: path.with_suffix(".csv.bz2").write_bytes(bz2.compress(text.encode())),
        "xz": lambda: path.with_suffix(".csv.xz").write_bytes(lzma.compress(text.encode())),
        "zst": lambda: pa.output_stream(str(path.with_suffix(".csv.zst")), compression="zstd").write(text.encode()),
        "zip": lambda: zipfile.ZipFile(path.with_suffix(".zip"), "w").writestr("table.csv", text),
        "parquet": lambda: frame.to_parquet(path.with_suffix(".parquet")),
    }
    writers[kind]()
    suffix = {"semicolon": ".csv", "tsv": ".tsv", "pipe": ".txt", "zip": ".zip", "parquet": ".parquet"}
    return path.with_suffix(suffix.get(kind, f".csv.{kind}" if kind != "csv" else ".csv"))


@pytest.mark.parametrize("kind", ["csv", "semicolon", "tsv", "pipe", "gz", "bz2", "xz", "zst", "zip", "parquet"])
def test_every_format_reads_to_the_same_numbers(tmp_path, kind):
    frame = numbers()
    path = write_as(frame, tmp_path / "table", kind)
    settings = {"decimal": ","} if kind == "semicolon" else {}

    datamodule = module(path, targets="y", **settings)
    assert datamodule.feature_names == ["a", "b"]
    torch.testing.assert_close(
        datamodule.train.features, torch.tensor(frame[["a", "b"]].to_numpy(), dtype=torch.float32)
    )
    torch.testing.assert_close(datamodule.train.targets[:, 0], torch.tensor(frame["y"].to_numpy(), dtype=torch.float32))


def test_a_directory_of_parquet_files_is_one_table(tmp_path):
    frame = numbers()
    (tmp_path / "parts").mkdir()
    for part, rows in enumerate((slice(0, 2), slice(2, 4))):
        pq.write_table(
            pa.Table.from_pandas(frame.iloc[rows], preserve_index=False), tmp_path / "parts" / f"{part}.parquet"
        )

    datamodule = module(tmp_path / "parts", targets=["y"])
    assert sorted(datamodule.train.targets[:, 0].tolist()) == [0.5, 1.0, 1.5, 2.0]


def test_the_separator_can_be_set(tmp_path):
    (tmp_path / "t.csv").write_text("a:y\n1:2\n2:4\n3:6\n")
    assert module(tmp_path / "t.csv", targets="y", sep=":").feature_names == ["a"]


def test_columns_are_kept_or_excluded_by_name_and_a_row_id_is_pointed_out(tmp_path, caplog):
    frame = numbers().assign(id=[1, 2, 3, 4], c=[0.3, 0.1, 0.2, 0.4])
    frame.to_csv(tmp_path / "t.csv", index=False)

    assert module(tmp_path / "t.csv", targets="y", features=["b", "a"]).feature_names == ["b", "a"]
    assert module(tmp_path / "t.csv", targets="y", exclude=["id", "c"]).feature_names == ["a", "b"]
    assert "looks like a row number" not in caplog.text
    module(tmp_path / "t.csv", targets="y")
    assert "Column id" in caplog.text and "data.exclude=[id]" in caplog.text


def test_a_row_id_written_with_thousands_separators_is_pointed_out_too(tmp_path, caplog):
    codes = "".join(f'"{n:,}",{n % 7},{n % 3}\n' for n in range(998, 1010))
    (tmp_path / "t.csv").write_text("code,x,y\n" + codes)

    assert module(tmp_path / "t.csv", targets="y", thousands=",").feature_names == ["code", "x"]
    assert "Column code" in caplog.text and "data.exclude=[code]" in caplog.text


@pytest.mark.parametrize(
    "content, settings, words",
    [
        ("a,a,y\n1,2,3\n4,5,6\n", {}, ["more than one column named 'a'", "rename"]),
        ("a,y\n1,x\n2,y\n", {}, ["Target column y", "not numeric", "data.targets"]),
        (
            'a,price\n1,"1,000"\n2,"2,500"\n',
            {},
            ["holds numbers written with a thousands separator", "\"data.thousands=','\"", "the decimal point"],
        ),
        ("a,y\n1,2\n2,3\n", {"exclude": ["z"]}, ["'z' (data.exclude)", "its columns are: a, y"]),
        ("a b,y\n1,2\n2,3\n", {"features": ["a_b"]}, ["did you mean 'a b'", "\"data.features=['a b']\""]),
        ("a,y\n1,2\n2,3\n", {"exclude": ["a"]}, ["no feature column left"]),
        ("a,y\n,2\n,3\n", {}, ["Column a", "blank in every row", "data.exclude=[a]"]),
        ("a,y\n1,2\n2,3\nabc,4\n", {}, ["Column a", "line 4", "'abc'", "data.categorical"]),
        ("d,y\n2024-01-01,2\nsoon,3\n", {"dates": ["d"]}, ["Column d", "not a date", "line 3", "'soon'"]),
        ("d,y\n2024-01-01,2\n2024-01-02,3\n", {"dates": ["y"]}, ["y are in data.targets and in data.dates"]),
        ("a;y\n18,0;36,7\n19,5;37,2\n21,25;38,9\n", {}, ["a decimal comma (e.g. '36,7')", "\"data.decimal=','\""]),
        (
            "a;y\n18,0;36,7\n19,5;37,2\n21,25;38,9\n",
            {"thousands": ","},  # (as a user would after a hint to the contrary: 18,0 must never become 180)
            ["do not separate thousands (groups of three digits)", "\"data.decimal=','\" instead"],
        ),
        (UNITS, {}, ["Column w", "numbers with a unit or symbol (line 2: '12.5 kg')", "data.exclude=[w]"]),
        (UNITS, {"categorical": ["w"]}, ["No feature of", "each of its feature columns (w) gives none"]),
        ("x,y\n1,2\n2,3\n3,4,5\n4,5\n", {}, ["line 4 has 3 fields where the header has 2 ('3,4,5')", "Quote"]),
        ("x,y\n1,2\n2,3\n".encode("utf-16"), {}, ["is UTF-16 text", "save it as UTF-8"]),
        ("x,y\n1,2\n2,3\n", {"val_fraction": 0.5}, ["The training split has 1 of the table's 2 rows", "at least 2"]),
    ],
)
def test_bad_columns_are_named_with_the_fix(tmp_path, content, settings, words):
    (tmp_path / "t.csv").write_bytes(content if isinstance(content, bytes) else content.encode())
    targets = "price" if "price" in str(content) else "y"
    with pytest.raises(ConfigError) as error:
        module(tmp_path / "t.csv", targets=targets, **settings)
    for word in words:
        assert word in str(error.value)


@pytest.mark.parametrize(
    "values, words",
    [
        (pa.array([[1, 2]] * 4), ["Column v", "list<element: int64>", "data.exclude=[v]"]),
        (pa.array([{"a": 1}] * 4), ["Column v", "struct<a: int64>", "data.exclude=[v]"]),
        (pa.array([b"\x00\x01"] * 4), ["Column v", "binary", "data.exclude=[v]"]),
    ],
)
def test_parquet_columns_that_cannot_be_numbers_are_named(tmp_path, values, words):
    pq.write_table(pa.table({"x": [1.0, 2, 3, 4], "v": values, "y": [2.0, 4, 6, 9]}), tmp_path / "t.parquet")
    with pytest.raises(ConfigError) as error:
        module(tmp_path / "t.parquet", targets="y")
    for word in words:
        assert word in str(error.value)


def test_two_parquet_columns_of_one_name_are_named(tmp_path):
    columns = [pa.array([1.0, 2, 3]), pa.array([5.0, 6, 8]), pa.array([2.0, 4, 7])]
    pq.write_table(pa.Table.from_arrays(columns, names=["x", "x", "y"]), tmp_path / "t.parquet")
    with pytest.raises(ConfigError, match="more than one column named 'x'; rename them"):
        module(tmp_path / "t.parquet", targets="y")


def test_odd_but_valid_tables_read_right(tmp_path):
    """Decimal Parquet columns, a quoted cell longer than Python's csv limit, a feature named like the intercept."""
    amounts = pa.array([decimal.Decimal(v) for v in ("1.50", "2.25", "3.00", "4.75")], pa.decimal128(5, 2))
    pq.write_table(pa.table({"amount": amounts, "y": [1.0, 2, 3, 5]}), tmp_path / "d.parquet")
    assert module(tmp_path / "d.parquet", targets="y").train.features[:, 0].tolist() == [1.5, 2.25, 3.0, 4.75]

    note = "a" * 200_000
    (tmp_path / "long.csv").write_text("x,note,y\n" + "".join(f'{i},"{note}{i % 2}",{i}\n' for i in range(6)))
    datamodule = module(tmp_path / "long.csv", targets="y", min_category_count=1)
    assert datamodule.feature_names == ["x", "note=" + note + "1"]

    (tmp_path / "bias.csv").write_text("x,bias,y\n1,2,3.1\n2,1,4.9\n3,4,7.2\n4,3,9\n5,7,11.1\n6,5,12.8\n")
    datamodule = module(tmp_path / "bias.csv", targets="y")
    solution = Solution.of(datamodule.training_sums.equations, datamodule.train)
    rows = fit_statistics(solution, datamodule.train, None, 0.95).coefficients
    assert [row["feature"] for row in rows] == ["x", "bias", "(intercept)"]


def test_text_columns_become_one_hot_levels_against_the_most_common(tmp_path):
    frame = houses()
    frame.to_csv(tmp_path / "h.csv", index=False)

    datamodule = module(tmp_path / "h.csv", targets="price (€)", thousands=",", impute="median", exclude="id")
    plan = next(entry for entry in datamodule.columns["features"] if entry["column"] == "city")
    assert plan["reference"] == "Lyon" and plan["rare"] == ["Brest"]  # 4 rows: fewer than data.min_category_count
    names = datamodule.feature_names
    assert [n for n in names if n.startswith("city=")] == ["city=Nice", "city=Paris", "city=(missing)", "city=other"]
    paris = torch.tensor((frame["city"] == "Paris").to_numpy(), dtype=torch.float32)
    torch.testing.assert_close(datamodule.train.all_features[:, names.index("city=Paris")], paris)


def test_rare_levels_unseen_levels_and_too_many_levels(tmp_path, caplog):
    (tmp_path / "t.csv").write_text("c,y\n" + "a,1\n" * 6 + "b,2\n" * 6 + "c,3\n" + ",4\n" * 5)
    datamodule = module(tmp_path / "t.csv", targets="y", min_category_count=5)
    assert datamodule.feature_names == ["c=b", "c=(missing)", "c=other"]

    from linreg.data.columns import encode

    (tmp_path / "new.csv").write_text("c\nb\nzzz\nzzz\nc\n")
    from linreg.data.formats import read_table_file

    encoded = encode(datamodule.columns, read_table_file(str(tmp_path / "new.csv"), as_text=True), "new.csv", False)
    np.testing.assert_array_equal(encoded.features, [[1, 0, 0], [0, 0, 0], [0, 0, 0], [0, 0, 1]])
    assert "2 cell(s) of new.csv hold categories the training rows did not have (c: 'zzz')" in caplog.text

    with pytest.raises(
        ConfigError, match=r"Column c has 4 different values.*data.max_categories=3.*data.exclude=\[c\]"
    ):
        module(tmp_path / "t.csv", targets="y", max_categories=3)


def test_numbers_can_be_categories_and_keep_their_leading_zeros(tmp_path):
    (tmp_path / "t.csv").write_text("zip,y\n" + "01000,1\n" * 5 + "02000,2\n" * 5)
    assert module(tmp_path / "t.csv", targets="y", categorical="zip").feature_names == ["zip=02000"]


def test_true_false_and_dates_become_numbers_named_in_the_equation(tmp_path):
    (tmp_path / "t.csv").write_text(
        "flag,when,other day,y\nyes,2024-01-01,03/02/2024,1\nNo,2024-01-08,03/09/2024,2\nTRUE,2024-03-01,04/01/2024,3\n"
    )
    datamodule = module(tmp_path / "t.csv", targets="y")
    assert datamodule.feature_names == [
        "flag",
        "when.days",
        "when.month",
        "when.weekday",
        "other day.days",
        "other day.month",
        "other day.weekday",
    ]
    expected = [[1, 0, 1, 0, 0, 3, 5], [0, 7, 1, 0, 7, 3, 5], [1, 60, 3, 4, 30, 4, 0]]
    np.testing.assert_array_equal(datamodule.train.all_features.numpy(), expected)


@pytest.mark.parametrize("impute, fill", [("mean", 4.0), ("median", 2.0), ("most_frequent", 1.0)])
def test_blanks_are_filled_from_the_training_rows_and_can_be_marked(tmp_path, impute, fill):
    (tmp_path / "t.csv").write_text("a,y\n1,1\n1,2\n3,3\n,4\n11,5\n")
    datamodule = module(tmp_path / "t.csv", targets="y", impute=impute, missing_indicator=True)
    assert datamodule.feature_names == ["a", "a.missing"]
    assert datamodule.train.all_features[:, 0].tolist() == [1, 1, 3, fill, 11]
    assert datamodule.train.all_features[:, 1].tolist() == [0, 0, 0, 1, 0]


def test_fills_come_from_the_training_split_alone(tmp_path):
    values = np.arange(100.0)
    frame = pd.DataFrame({"a": values, "y": values})
    frame.loc[0, "a"] = np.nan
    frame.to_csv(tmp_path / "t.csv", index=False)

    datamodule = module(tmp_path / "t.csv", targets="y", impute="mean", val_fraction=0.5)
    train_rows = datamodule.train.rows.numpy()
    expected = np.nanmean(frame["a"].to_numpy()[train_rows])
    assert datamodule.columns["features"][0]["fill"] == [pytest.approx(expected)]


def test_rows_without_a_target_are_left_out_and_counted(tmp_path, caplog):
    (tmp_path / "t.csv").write_text("a,y\n1,1\n2,\n3,3\n4,4\n")
    assert len(module(tmp_path / "t.csv", targets="y").train) == 3
    assert "Left out 1 of 4 rows" in caplog.text

    # Blank features in those rows alone (penguins: the rows without a measured mass lack the rest too).
    (tmp_path / "u.csv").write_text("a,b,y\n1,5,1\n,,\n3,7,3\n4,8,4\n,6,\n")
    assert len(module(tmp_path / "u.csv", targets="y").train) == 3
    assert "Left out 2 of 5 rows" in caplog.text


@pytest.fixture
def messy_run(train_with, tmp_path):
    """A run trained on the messy house table, as docs/real-tables.md's example does."""
    frame = houses()
    frame.to_csv(tmp_path / "houses.csv", index=False)
    run = train_with(*MESSY, f"data.path={tmp_path / 'houses.csv'}")
    return run, frame


def test_predict_on_the_training_file_reproduces_the_training_predictions(messy_run, tmp_path):
    run, frame = messy_run
    output = predict(
        job_config("predict", tmp_path, f"input={tmp_path / 'houses.csv'}", f"output={tmp_path / 'predicted.csv'}")
    )

    written = pd.read_csv(output, dtype=str, keep_default_na=False)
    assert list(written.columns) == [*frame.columns, "price (€)_predicted"]
    assert written["price (€)"].tolist() == frame["price (€)"].tolist()  # the input's cells exactly as written
    with torch.no_grad():
        expected = run.model(run.datamodule.train.all_features)[:, 0].numpy()
    np.testing.assert_array_equal(written["price (€)_predicted"].astype(np.float32).to_numpy(), expected)


def test_predict_fills_blanks_keeps_every_row_in_order_and_counts_unseen_levels(messy_run, tmp_path, caplog):
    new = pd.DataFrame(
        {"id": [9, 8, 7], "city": ["Paris", "", "Tokyo"], "sale date": ["2024-05-01", "", "2021-01-01"]}
    ).assign(garden=["yes", "no", ""], **{"area m²": ["80", "", "55.5"]})
    new.to_csv(tmp_path / "new.csv", index=False)

    written = pd.read_csv(
        predict(job_config("predict", tmp_path, f"input={tmp_path / 'new.csv'}", f"output={tmp_path / 'p.csv'}"))
    )
    assert written["id"].tolist() == [9, 8, 7] and written["price (€)_predicted"].notna().all()
    assert "1 cell(s) of" in caplog.text and "'Tokyo'" in caplog.text


def test_eval_scores_a_raw_file_as_training_did(messy_run, tmp_path):
    run, _ = messy_run
    metrics = evaluate(job_config("eval", tmp_path, "ckpt_path=last", "~logger"))
    assert metrics["test/loss"] == pytest.approx(run.metrics["test/loss"], rel=1e-6)
    on_file = evaluate(job_config("eval", tmp_path, "ckpt_path=last", f"input={tmp_path / 'houses.csv'}", "~logger"))
    assert on_file["test/r2"] > 0.9


def test_a_category_that_drives_the_target_reaches_the_least_squares_r2(messy_run):
    sklearn = pytest.importorskip("sklearn")
    from sklearn.compose import make_column_transformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    del sklearn
    run, frame = messy_run
    table = frame.assign(
        days=(pd.to_datetime(frame["sale date"]) - pd.Timestamp("2020-01-01")).dt.days,
        month=pd.to_datetime(frame["sale date"]).dt.month,
        weekday=pd.to_datetime(frame["sale date"]).dt.day_of_week,
        garden=(frame["garden"] == "yes").astype(float),
        price=frame["price (€)"].str.replace(",", "").astype(float),
    )
    rows = run.datamodule.train.rows.numpy()
    encoder = make_column_transformer(
        (OneHotEncoder(min_frequency=5, handle_unknown="infrequent_if_exist"), ["city"]),
        (SimpleImputer(strategy="median", add_indicator=True), ["area m²"]),
        ("passthrough", ["days", "month", "weekday", "garden"]),
    )
    features = table.drop(columns="price").assign(city=table["city"].fillna("(missing)"))
    reference = make_pipeline(encoder, LinearRegression()).fit(features.iloc[rows], table["price"].iloc[rows])
    expected_r2 = reference.score(features.iloc[rows], table["price"].iloc[rows])

    with torch.no_grad():
        predicted = run.model(run.datamodule.train.features)[:, 0].double()
    actual = run.datamodule.train.targets[:, 0].double()
    r2 = 1 - ((predicted - actual) ** 2).sum() / ((actual - actual.mean()) ** 2).sum()
    assert expected_r2 > 0.95 and float(r2) == pytest.approx(expected_r2, abs=0.01)


def test_the_summary_and_tensorboard_name_the_expanded_features(messy_run, tmp_path):
    run, _ = messy_run
    text = summarize(run, tmp_path)
    assert "city=Paris" in text and "sale date.days" in text and "area m².missing" in text
    assert "weights/" not in text  # (the coefficients are the equation's lines, not metrics)

    curves = set(events_of(tmp_path).Tags()["scalars"])
    assert {"weights/city=Paris", "weights/sale date.days", "weights/area m².missing", "weights/bias"} <= curves
    weight, bias = run.model.equation()
    paris = run.datamodule.feature_names.index("city=Paris")
    assert events_of(tmp_path).Scalars("weights/city=Paris")[-1].value == pytest.approx(
        weight[0, paris].item(), rel=0.01
    )


def test_a_bad_cell_deep_in_a_large_file_is_named_by_its_line(tmp_path):
    from linreg.data.columns import numeric_plan
    from linreg.data.read import read_with_plan

    cells = ["1.5"] * 300_000
    cells[250_000] = "abc"
    (tmp_path / "big.csv").write_text("a,y\n" + "".join(f"{cell},1\n" for cell in cells))
    with pytest.raises(ConfigError, match="line 250002 holds 'abc'"):
        read_with_plan(numeric_plan(["a"], ["y"]), str(tmp_path / "big.csv"), "input", True, "left out")
