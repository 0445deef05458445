"""Tables in, batches out: splits, normalization, the batch sampler, CSV and synthetic sources."""

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import CONFIGS
from omegaconf import OmegaConf

import linreg.data.datamodule as datamodule_code
from linreg.data import (
    CsvDataModule,
    InMemoryDataModule,
    SeededOrder,
    ShuffledBatches,
    Table,
    TabularDataModule,
    split,
)
from linreg.errors import ConfigError
from linreg.least_squares import NormalEquations, TrainingSums, solve
from linreg.normalize import Normalizer
from linreg.runtime import build


def table_of(n_rows: int) -> Table:
    features = torch.arange(n_rows * 2, dtype=torch.float32).reshape(n_rows, 2)
    return Table(features, features[:, :1] * 3, ["a", "b"], ["y"])


def ready(datamodule: TabularDataModule) -> TabularDataModule:
    datamodule.setup("fit")
    return datamodule


def built(cfg) -> TabularDataModule:
    return ready(build(cfg.data, _convert_="all"))


@pytest.mark.parametrize(
    "name, n_rows, features, targets",
    [
        ("thermometer", 11, ["t_u"], ["t_c"]),
        ("anscombe", 11, ["x"], ["y"]),
        ("crops", 5, ["temperature", "rainfall", "humidity"], ["apples", "oranges"]),
    ],
)
def test_builtin_tables_load_from_the_package(make_config, name, n_rows, features, targets):
    datamodule = built(make_config(f"data={name}"))

    assert (len(datamodule.train), datamodule.feature_names, datamodule.target_names) == (n_rows, features, targets)


def test_a_users_csv_takes_every_other_column_as_features(make_config, tmp_path):
    path = tmp_path / "houses.csv"
    pd.DataFrame({"rooms": [1, 2, 3, 4, 5], "age": [9, 8, 7, 6, 5], "price": [10, 20, 30, 40, 50]}).to_csv(
        path, index=False
    )

    datamodule = built(make_config("data=csv", f"data.path={path}", "data.targets=[price]"))
    assert datamodule.feature_names == ["rooms", "age"]
    chosen = built(make_config("data=csv", f"data.path={path}", "data.targets=[price]", "data.features=[age]"))
    assert chosen.feature_names == ["age"]


def test_a_missing_column_is_named_with_the_columns_that_exist(make_config):
    pattern = r"'t_f' \(data.targets; did you mean 't_u'\?\) are not in .*thermometer.csv; its columns are: t_u, t_c"
    with pytest.raises(ConfigError, match=pattern):
        built(make_config("data.targets=[t_f]"))


def test_splits_are_disjoint_seeded_and_sized_by_fraction():
    train, val, test = split(table_of(100), val_fraction=0.2, test_fraction=0.1, seed=7)
    again = split(table_of(100), val_fraction=0.2, test_fraction=0.1, seed=7)
    other = split(table_of(100), val_fraction=0.2, test_fraction=0.1, seed=8)

    assert (len(train), len(val), len(test)) == (70, 20, 10)
    rows = torch.cat([train.features[:, 0], val.features[:, 0], test.features[:, 0]])
    assert sorted(rows.tolist()) == list(range(0, 200, 2))
    assert torch.equal(val.features, again[1].features)
    assert not torch.equal(val.features, other[1].features)


def test_a_zero_fraction_means_no_such_split():
    train, val, test = split(table_of(10), val_fraction=0, test_fraction=0, seed=0)
    assert (len(train), len(val), len(test)) == (10, 0, 0)


@pytest.mark.parametrize(
    "val_fraction, test_fraction, message",
    [
        (-0.1, 0.0, "data.val_fraction=-0.1"),
        (0.6, 0.5, "leaves no training rows"),
    ],
)
def test_impossible_splits_are_refused(val_fraction, test_fraction, message):
    with pytest.raises(ConfigError, match=message):
        split(table_of(10), val_fraction, test_fraction, seed=0)


def test_normalization_is_fitted_on_the_training_split_alone():
    datamodule = ready(InMemoryDataModule(table_of(50), val_fraction=0.3, normalize="standardize", seed=1))
    train = datamodule.train.features.double()
    normalized = datamodule.feature_normalizer(datamodule.train.features).double()

    torch.testing.assert_close(normalized.mean(0), torch.zeros(2, dtype=torch.double), atol=1e-5, rtol=0)
    torch.testing.assert_close(normalized.std(0, correction=0), torch.ones(2, dtype=torch.double), atol=1e-5, rtol=0)
    all_rows = table_of(50).features.double()
    assert not torch.allclose(train.mean(0), all_rows.mean(0))


@pytest.mark.parametrize("method, low, high", [("minmax", 0.0, 1.0), ("scale", 0.0, 9.9)])
def test_minmax_and_scale_map_the_training_rows_as_documented(method, low, high):
    datamodule = ready(InMemoryDataModule(table_of(50), val_fraction=0, normalize=method, scale=0.1))
    normalized = datamodule.feature_normalizer(datamodule.train.features)

    assert normalized.min().item() == pytest.approx(low, abs=1e-6)
    assert normalized.max().item() == pytest.approx(high, abs=1e-5)


def test_a_constant_column_is_left_unscaled_with_a_warning(caplog):
    table = Table(
        torch.tensor([[1.0, 5.0], [2.0, 5.0], [3.0, 5.0]]), torch.tensor([[1.0], [0.0], [2.0]]), ["x", "flat"], ["y"]
    )
    datamodule = ready(InMemoryDataModule(table, val_fraction=0, normalize="standardize"))
    assert "Column(s) flat are constant in the training split" in caplog.text
    assert torch.isfinite(datamodule.feature_normalizer(table.features)).all()


def test_an_unknown_normalization_lists_the_valid_ones():
    with pytest.raises(ConfigError, match="none, scale, standardize, minmax"):
        ready(InMemoryDataModule(table_of(10), val_fraction=0, normalize="zscore"))


def test_the_sampler_yields_every_row_once_per_epoch_in_a_seeded_order():
    order = SeededOrder(n_rows=10, shuffle=True, seed=3)
    sampler = ShuffledBatches(order, batch_size=4, drop_last=False)
    epoch0 = [batch.tolist() for batch in sampler]
    order.set_epoch(1)  # Lightning calls it on the batch sampler's sampler
    epoch1 = [batch.tolist() for batch in sampler]
    order.set_epoch(0)

    assert [len(b) for b in epoch0] == [4, 4, 2] and len(sampler) == 3
    assert sorted(sum(epoch0, [])) == list(range(10)) == sorted(sum(epoch1, []))
    assert epoch0 != epoch1
    assert [batch.tolist() for batch in sampler] == epoch0


def test_the_sampler_can_drop_the_last_partial_batch_or_keep_the_file_order():
    shuffled, in_order = SeededOrder(10, shuffle=True, seed=0), SeededOrder(5, shuffle=False, seed=0)
    assert [len(b) for b in ShuffledBatches(shuffled, 4, drop_last=True)] == [4, 4]
    rows = list(range(5))
    assert [rows[b] for b in ShuffledBatches(in_order, 2, drop_last=False)] == [[0, 1], [2, 3], [4]]
    # A batch of every row is the rows in order, shuffled or not: no loss depends on the order inside a batch.
    assert [rows[b] for b in ShuffledBatches(SeededOrder(5, shuffle=True, seed=0), 8, drop_last=False)] == [rows]


def test_ddp_ranks_share_each_global_batch_without_overlap():
    shares = [
        [batch.tolist() for batch in ShuffledBatches(SeededOrder(12, True, 5), 4, False, rank=rank, world_size=2)]
        for rank in range(2)
    ]
    global_batches = [batch.tolist() for batch in ShuffledBatches(SeededOrder(12, True, 5), 4, drop_last=False)]

    for batch, share0, share1 in zip(global_batches, *shares, strict=True):
        assert sorted(share0 + share1) == sorted(batch) and len(share0) == len(share1) == 2


def test_each_item_of_a_loader_is_one_batch_of_the_rows_the_sampler_names(make_config):
    datamodule = built(make_config("data=crops", "data.batch_size=2", "data.val_fraction=0.4"))
    loader = datamodule.train_dataloader()
    batches = list(loader)

    assert len(batches) == len(loader) == 2  # 3 training rows in batches of 2
    for (features, targets), positions in zip(batches, loader.batch_sampler, strict=True):
        rows = datamodule.train.rows[positions]  # positions in the split, rows of the whole table
        torch.testing.assert_close(features, datamodule.train.all_features[rows])
        torch.testing.assert_close(targets, datamodule.train.all_targets[rows])


def test_synthetic_data_keeps_its_true_weights(make_config):
    datamodule = built(make_config("data=synthetic", "data.n_samples=500", "data.n_features=3", "data.noise=0"))
    table = datamodule.train

    expected = table.features @ datamodule.true_weight.T + datamodule.true_bias
    torch.testing.assert_close(table.targets, expected, atol=1e-5, rtol=1e-5)
    assert len(datamodule.train) == 400 and len(datamodule.val) == 100


def test_one_pass_over_the_training_rows_gives_the_normalization_and_the_normalized_least_squares():
    values = torch.randn(1000, 3, dtype=torch.float64) * 5 + 1e6  # a mean that dwarfs the spread
    targets = values[:, :1] * 2 - 2e6 + torch.randn(1000, 1, dtype=torch.float64)
    rows = torch.randperm(1000)[:700]
    table = Table(values.float(), targets.float(), ["a", "b", "c"], ["y"]).select(rows)

    sums = TrainingSums.of(table, chunk_rows=64)
    mean, std, low, high = sums.statistics()
    chosen = values.float()[rows].double()
    torch.testing.assert_close(mean, chosen.mean(0))
    torch.testing.assert_close(std, chosen.std(0, correction=0))
    assert torch.equal(low, chosen.amin(0)) and torch.equal(high, chosen.amax(0))
    # The normalized equations follow from the raw ones: the same fit as a pass over the normalized rows.
    features, outputs = Normalizer(3), Normalizer(1)
    features.fit("standardize", sums.statistics())
    outputs.fit("minmax", sums.statistics(of_targets=True))
    derived = solve(sums.equations.normalized(features, outputs))
    direct = solve(NormalEquations.of(table, features, outputs, chunk_rows=64))
    torch.testing.assert_close(derived.weight, direct.weight, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(derived.bias, direct.bias, rtol=1e-9, atol=1e-9)
    assert derived.train_loss == pytest.approx(direct.train_loss, rel=1e-9)


def test_a_split_names_its_rows_instead_of_copying_them():
    table = table_of(100)
    train, val, _ = split(table, val_fraction=0.2, test_fraction=0.0, seed=0)

    assert train.all_features is table.all_features and val.all_features is table.all_features
    served = torch.cat(
        [features[:, 0] for features, _ in ready(InMemoryDataModule(table, val_fraction=0.2, seed=0)).loader("val")]
    )
    assert sorted(served.tolist()) == sorted(val.features[:, 0].tolist())


def read_twice(tmp_path, monkeypatch, **settings) -> list[TabularDataModule]:
    """One file read as a large table is (laid out split by split), and left in the file's order."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 3))
    columns = pd.DataFrame(np.c_[x, x @ [1.0, -2.0, 0.5] + rng.normal(size=300)], columns=["a", "b", "c", "y"])
    columns.to_csv(tmp_path / "large.csv", index=False)
    monkeypatch.setattr(datamodule_code, "PRECISE_CELLS", 100)  # (300 rows × 4 columns count as large)
    modules = []
    for lays_out in (True, False):
        datamodule = CsvDataModule(str(tmp_path / "large.csv"), targets="y", **settings)
        datamodule.lays_out = lays_out
        modules.append(ready(datamodule))
    return modules


def test_a_large_table_is_laid_out_split_by_split_and_a_batch_of_a_whole_split_is_a_view(tmp_path, monkeypatch):
    laid_out, in_file_order = read_twice(tmp_path, monkeypatch, val_fraction=0.2, test_fraction=0.1)

    assert [part.rows for part in (laid_out.train, laid_out.val, laid_out.test)] == [
        slice(0, 210),
        slice(210, 270),
        slice(270, 300),
    ]
    ((features, targets),) = list(laid_out.train_dataloader())  # (data.batch_size=null, data.shuffle=true)
    assert features.data_ptr() == laid_out.table.all_features.data_ptr() and len(features) == 210
    # The same rows in each split, the same fingerprint, and the passes for sums still read the file's order.
    assert laid_out.rows_digest == in_file_order.rows_digest
    for part in ("train", "val", "test"):
        ours, theirs = getattr(laid_out, part), getattr(in_file_order, part)
        assert torch.equal(ours.file_positions(), theirs.file_positions())
        assert torch.equal(ours.features, theirs.features) and torch.equal(ours.targets, theirs.targets)
        for mine, other in zip(ours.chunks(64, file_order=True), theirs.chunks(64), strict=True):
            assert all(torch.equal(a, b) for a, b in zip(mine, other, strict=True))
        assert torch.equal(torch.cat([x for x, _ in ours.chunks(64)]), ours.features.double())  # (the sums' pass)


def test_a_large_table_trained_in_mini_batches_is_not_laid_out(tmp_path, monkeypatch):
    mini_batches, _ = read_twice(tmp_path, monkeypatch, val_fraction=0.2, batch_size=50)  # (each a gather anyway)
    assert mini_batches.table.file_rows is None and isinstance(mini_batches.train.rows, torch.Tensor)


def test_cross_validation_folds_of_a_laid_out_table_are_the_folds_of_the_file(tmp_path, monkeypatch):
    laid_out, in_file_order = read_twice(tmp_path, monkeypatch, folds=3, fold=0, test_fraction=0.1)

    for fold in (1, 2, None):
        ours, theirs = laid_out.with_fold(fold), in_file_order.with_fold(fold)
        assert ours.rows_digest == theirs.rows_digest
        assert torch.equal(ours.train.features, theirs.train.features)
        assert torch.equal(ours.val.file_positions(), theirs.val.file_positions())


def large_parquet(tmp_path, monkeypatch, **columns) -> str:
    """A Parquet file of 3,000 rows in row groups of 500 that counts as large (over PRECISE_CELLS values)."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3000, 2))
    frame = pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "y": x @ [2.0, -1.0] + rng.normal(size=3000), **columns})
    path = tmp_path / "large.parquet"
    frame.to_parquet(path, row_group_size=500)
    monkeypatch.setattr(datamodule_code, "PRECISE_CELLS", 100)
    return str(path)


def test_a_large_parquet_file_of_numbers_is_read_in_batches_into_the_table_a_whole_read_gives(tmp_path, monkeypatch):
    path = large_parquet(tmp_path, monkeypatch, count=np.arange(3000) % 7, flag=np.arange(3000) % 2 == 0)
    in_batches = ready(CsvDataModule(path, targets="y", test_fraction=0.1))
    with monkeypatch.context() as whole:
        whole.setattr(CsvDataModule, "parquet_in_batches", lambda self, settings: None)
        read_whole = ready(CsvDataModule(path, targets="y", test_fraction=0.1))

    assert in_batches.parquet_in_batches(in_batches.column_settings()) is not None
    assert in_batches.columns == read_whole.columns and in_batches.rows_digest == read_whole.rows_digest
    assert torch.equal(in_batches.table.all_features, read_whole.table.all_features)
    for ours, theirs in zip(in_batches.training_sums.statistics(), read_whole.training_sums.statistics(), strict=True):
        torch.testing.assert_close(ours, theirs, rtol=1e-13, atol=0)  # (float64 sums gathered as the rows were read)


@pytest.mark.parametrize(
    "setting, column",
    [
        ("data.impute=mean", None),  # (a fill is fitted to the whole column)
        (None, pd.array([1.0, None] * 1500, dtype="Float64")),  # (a blank cell: its row is refused or left out)
        (None, ["north", "south", "east"] * 1000),  # (text: its levels come from the whole column)
    ],
)
def test_a_parquet_file_that_needs_its_whole_columns_first_is_read_whole(tmp_path, monkeypatch, setting, column):
    path = large_parquet(tmp_path, monkeypatch, **({} if column is None else {"other": column}))
    impute = {"impute": setting.partition("=")[2]} if setting else {}
    datamodule = CsvDataModule(path, targets="y", **impute)
    assert datamodule.parquet_in_batches(datamodule.column_settings()) is None


def test_a_row_number_is_found_in_a_parquet_file_read_in_batches_from_its_whole_column(tmp_path, monkeypatch, caplog):
    rising_then_not = np.arange(3000.0)
    rising_then_not[2000] = -1.0  # (the first thousand rows rise by one; the whole column does not)
    path = large_parquet(tmp_path, monkeypatch, row=np.arange(3000), almost=rising_then_not)
    ready(CsvDataModule(path, targets="y"))

    assert "Column row of" in caplog.text and "looks like a row number" in caplog.text
    assert "Column almost of" not in caplog.text


def test_moving_to_the_training_device_keeps_one_copy_shared_by_the_splits():
    moved = ready(InMemoryDataModule(table_of(100), val_fraction=0.2, test_fraction=0.1))
    features, targets = moved.train.all_features * 1, moved.train.all_targets * 1
    parts = [part.on(features, targets) for part in (moved.train, moved.val, moved.test)]
    assert all(part.all_features is features for part in parts)
    assert torch.equal(parts[1].features, moved.val.features)


@pytest.mark.parametrize("name", sorted(p.stem for p in CONFIGS.glob("data/*.yaml")))
def test_every_data_config_keeps_its_own_values_over_the_shared_defaults(make_config, name):
    own = OmegaConf.load(CONFIGS / "data" / f"{name}.yaml")
    composed = make_config(f"data={name}").data

    for key in own:
        if key != "defaults" and not OmegaConf.is_missing(own, key):
            assert composed[key] == own[key], key
    assert {"batch_size", "normalize", "val_fraction"} <= set(composed)  # and the shared keys are there


def test_an_edit_to_a_data_config_is_what_runs(make_config, tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "mine.yaml").write_text(
        "defaults:\n  - csv\n  - _self_\npath: x.csv\ntargets: [y]\nbatch_size: 7\n"
    )

    cfg = make_config("hydra.searchpath=[file://" + str(tmp_path) + "]", "data=mine")
    assert cfg.data.batch_size == 7 and cfg.data._target_ == "linreg.data.CsvDataModule"
