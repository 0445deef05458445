"""Tables read a row group at a time (data.stream=true): each row once per epoch, in every process; the numbers of
the in-memory path; training, resuming and evaluating as with a table in memory."""

import pytest
import torch
from conftest import GRADIENT_STEPS, job_config, requires_gpu, write_parquet_directory

from linreg.data import CsvDataModule
from linreg.data.stream import Loading, StreamedSplit, Survey, share_of
from linreg.errors import ConfigError
from linreg.evaluate import evaluate
from linreg.least_squares import NormalEquations, TrainingSums, solve_training_sums

ROWS = 2517  # (700 + 1300 + 517, write_parquet_directory's files)


@pytest.fixture
def parquet_directory(tmp_path):
    return write_parquet_directory(tmp_path / "table")


def data_module(path, **settings) -> CsvDataModule:
    settings = {"targets": "y", "batch_size": 64, "shuffle_buffer": 100, "val_fraction": 0.0, **settings}
    module = CsvDataModule(path=str(path), **settings)
    module.setup("fit")
    return module


def ids_of(batches) -> list[int]:
    return [int(row_id) for features, _ in batches for row_id in features[:, 3]]


def epoch_ids(split: StreamedSplit, epoch: int, world_size: int = 1, **loading) -> tuple[list[int], list[list[int]]]:
    """The ids each process takes in `epoch`, and its batches' sizes."""
    settings = {"batch_size": 64, "shuffle": True, "drop_last": False, "buffer_rows": 100, **loading}
    ids, sizes = [], []
    for rank in range(world_size):
        batches = list(split.batches(epoch, Loading(**settings, rank=rank, world_size=world_size)))
        ids += ids_of(batches)
        sizes.append([len(features) for features, _ in batches])
    return ids, sizes


def test_every_epoch_streams_each_training_row_once_as_in_memory_also_over_processes(parquet_directory):
    in_memory, streamed = data_module(parquet_directory), data_module(parquet_directory, stream=True)
    every_row = sorted(range(ROWS))
    loader = in_memory.train_dataloader()
    loader.batch_sampler.sampler.set_epoch(1)
    assert sorted(ids_of(loader)) == every_row  # (the in-memory path, as the reference)

    loader, orders = streamed.train_dataloader(), []
    for epoch in (0, 1, 1):
        loader.batch_sampler.sampler.set_epoch(epoch)  # as Lightning does before each epoch
        batches = list(loader)
        assert len(batches) == len(loader) == 40  # 2517 rows in batches of 64
        orders.append(ids_of(batches))
        assert sorted(orders[-1]) == every_row
    assert orders[0] != orders[1] == orders[2]  # a new order each epoch, the same one for the same epoch

    for world_size, batch_size in ((2, 66), (3, 66), (2, 65), (3, 64)):  # (also batches the processes share ±1)
        for epoch in (0, 1):
            ids, sizes = epoch_ids(streamed.train, epoch, world_size, batch_size=batch_size)
            assert sorted(ids) == every_row  # disjoint shares, together every row once
            assert len({len(batches) for batches in sizes}) == 1  # the same number of batches: no process waits
            parts = [batch_size // world_size + (rank < batch_size % world_size) for rank in range(world_size)]
            assert all(set(batches[:-1]) == {part} for batches, part in zip(sizes, parts, strict=True))


def test_a_last_batch_too_small_to_share_is_dropped_as_in_memory():
    # 2518 rows in global batches of 1257 over 3 processes: 2 full batches (419 rows each per process) and 4 rows.
    assert [share_of(2518, 1257, False, rank, 3) for rank in range(3)] == [(0, 840), (840, 1679), (1679, 2518)]
    assert [share_of(2518, 1257, True, rank, 3) for rank in range(3)] == [(0, 838), (838, 1676), (1676, 2514)]
    assert share_of(2515, 1257, False, 0, 3) == (0, 838)  # 1 row left for 3 processes: dropped


def test_a_batch_with_fewer_rows_than_processes_is_refused(parquet_directory):
    streamed = data_module(parquet_directory, stream=True, batch_size=2)
    streamed.check_batch_split(2)
    with pytest.raises(ConfigError, match="data.batch_size=2 is smaller than the 3 processes"):
        streamed.check_batch_split(3)


def test_the_split_holds_each_row_once_and_an_epoch_takes_the_training_rows(parquet_directory):
    streamed = data_module(parquet_directory, stream=True, val_fraction=0.2, test_fraction=0.1)
    splits = [ids_of(getattr(streamed, part).chunks()) for part in ("train", "val", "test")]
    assert sorted(sum(splits, [])) == list(range(ROWS))
    assert [round(len(ids) / ROWS, 1) for ids in splits] == [0.7, 0.2, 0.1]
    assert sorted(epoch_ids(streamed.train, 3)[0]) == sorted(splits[0])
    assert sorted(epoch_ids(streamed.val, 0, shuffle=False)[0]) == sorted(splits[1])
    again = data_module(parquet_directory, stream=True, val_fraction=0.2, test_fraction=0.1)
    assert ids_of(again.val.chunks()) == splits[1]  # the same split on every pass and in every run
    # The survey gathered the validation rows' normal equations too (the fit path's gap): those of a pass.
    direct = NormalEquations.gather(streamed.val.chunks(), 4, 1)
    surveyed = streamed.val.raw_equations.shifted(direct.shift_x, direct.shift_y)
    for name in ("gram", "cross", "target_squares"):
        torch.testing.assert_close(getattr(surveyed, name), getattr(direct, name), rtol=1e-9, atol=1e-6)


def test_one_pass_gathers_the_in_memory_sums_also_when_processes_share_it(parquet_directory):
    in_memory, streamed = data_module(parquet_directory), data_module(parquet_directory, stream=True)
    table = streamed.train.table
    for ours, theirs in [(streamed.training_sums, in_memory.training_sums)] + [
        (Survey.merged([Survey.of(table, rank, world) for rank in range(world)]).sums, streamed.training_sums)
        for world in (2, 5)
    ]:
        mean, sd, low, high = ours.statistics()
        expected = theirs.statistics()
        for value, reference in zip((mean, sd, low, high), expected, strict=True):
            torch.testing.assert_close(value, reference, rtol=1e-9, atol=0)
        moved = ours.equations.shifted(theirs.equations.shift_x, theirs.equations.shift_y)
        scale = float(theirs.equations.gram.abs().max())  # (RᵀR: rounding errors of the largest products' size)
        torch.testing.assert_close(moved.gram, theirs.equations.gram, rtol=1e-9, atol=1e-14 * scale)
        torch.testing.assert_close(moved.cross, theirs.equations.cross, rtol=1e-9, atol=1e-14 * scale)
    fits = [solve_training_sums(m.training_sums, *m.normalizers.values()) for m in (streamed, in_memory)]
    torch.testing.assert_close(fits[0].weight, fits[1].weight, rtol=1e-9, atol=0)
    torch.testing.assert_close(streamed.feature_normalizer.factor, in_memory.feature_normalizer.factor)


def test_sums_gathered_in_pieces_combine_into_those_of_one_pass():
    x = torch.randn(1000, 3, dtype=torch.float64) * 5 + 100
    y = x @ torch.tensor([[1.0], [2.0], [3.0]], dtype=torch.float64) + torch.randn(1000, 1, dtype=torch.float64)
    whole = TrainingSums.gather([(x, y)], 3, 1)
    pieces = TrainingSums.combined(
        [TrainingSums.gather([(x[i : i + 300], y[i : i + 300])], 3, 1) for i in (0, 300, 600, 900)]
    )
    moved = pieces.equations.shifted(whole.equations.shift_x, whole.equations.shift_y)
    for name in ("gram", "cross", "target_squares"):
        torch.testing.assert_close(getattr(moved, name), getattr(whole.equations, name), rtol=1e-12, atol=1e-9)
    assert pieces.feature_range[0].tolist() == x.amin(0).tolist()


def test_a_streamed_run_trains_resumes_at_its_epoch_and_evaluates(parquet_directory, train_with, tmp_path):
    settings = [
        "data=csv",
        f"data.path={parquet_directory}",
        "data.targets=y",
        "data.exclude=[id]",
        "data.stream=true",
        "data.batch_size=128",
        "data.shuffle_buffer=300",
        *GRADIENT_STEPS,
        "optimizer.lr=0.05",
    ]
    straight = train_with(*settings, "trainer.max_epochs=4", f"output_dir={tmp_path / 'straight'}")
    train_with(*settings, "trainer.max_epochs=2", f"output_dir={tmp_path / 'first'}")
    resumed = train_with(
        *settings,
        "trainer.max_epochs=4",
        f"output_dir={tmp_path / 'resumed'}",
        f"ckpt_path={tmp_path / 'first' / 'checkpoints' / 'last.ckpt'}",
    )
    assert resumed.trainer.current_epoch == 4
    # Epochs 3 and 4 streamed in the order of epochs 3 and 4: the weights of the run that was not stopped.
    torch.testing.assert_close(resumed.model.linear.weight, straight.model.linear.weight, rtol=0, atol=0)
    assert straight.metrics["val/r2"] > 0.99
    assert straight.statistics.targets["y"].rows == len(straight.datamodule.train)
    # eval.py rebuilds the streamed split from the checkpoint's settings: the run's own validation loss.
    metrics = evaluate(job_config("eval", tmp_path, f"ckpt_path={tmp_path / 'straight'}", "~logger"))
    assert metrics["val/loss"] == pytest.approx(straight.metrics["val/loss"], rel=1e-6)


@requires_gpu
def test_on_a_gpu_streamed_batches_are_pinned_for_copies_that_do_not_block(parquet_directory):
    streamed = data_module(parquet_directory, stream=True)
    loading = Loading(64, True, False, 100, pin=True)
    assert all(x.is_pinned() and y.is_pinned() for x, y in streamed.train.batches(0, loading))
