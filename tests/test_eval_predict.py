"""Using what was trained: eval.py's metrics and predict.py's CSV from a checkpoint alone."""

import json
import logging
import math
import os

import pandas as pd
import pytest
import torch
from conftest import job_config

from linreg.checkpoints import find_checkpoint
from linreg.errors import ConfigError
from linreg.evaluate import evaluate
from linreg.predict import predict


def test_eval_reproduces_the_test_metrics_of_training(train_with, tmp_path):
    run = train_with("data=synthetic", "data.n_samples=600", "data.test_fraction=0.2", "trainer.max_epochs=4")

    metrics = evaluate(job_config("eval", tmp_path, f"ckpt_path={tmp_path}", "~logger"))
    assert set(metrics) == {"test/loss", "test/mae", "test/r2"}
    for name, value in metrics.items():
        assert value == pytest.approx(run.metrics[name], abs=1e-6)


def test_eval_on_a_csv_file_and_on_another_split(train_with, tmp_path):
    run = train_with("data.val_fraction=0.3")
    rows = run.datamodule.val
    pd.DataFrame({"t_u": rows.features[:, 0], "t_c": rows.targets[:, 0]}).to_csv(tmp_path / "held_out.csv", index=False)

    on_file = evaluate(job_config("eval", tmp_path, "ckpt_path=last", f"input={tmp_path / 'held_out.csv'}", "~logger"))
    on_split = evaluate(job_config("eval", tmp_path, "ckpt_path=last", "~logger"))  # the split it has: val
    assert on_file["test/loss"] == pytest.approx(run.metrics["val/loss"], rel=1e-6)
    assert on_split == pytest.approx({f"val/{name[5:]}": value for name, value in on_file.items()}, rel=1e-6)
    with pytest.raises(ConfigError, match="no test split"):
        evaluate(job_config("eval", tmp_path, "ckpt_path=last", "split=test", "~logger"))


def test_eval_right_after_a_default_run_scores_the_training_rows_and_says_so(train_with, tmp_path):
    run = train_with()  # the default run holds no rows out

    metrics = evaluate(job_config("eval", tmp_path, "ckpt_path=last"))
    assert set(metrics) == {"train/loss", "train/mae", "train/r2"}
    assert metrics["train/loss"] == pytest.approx(run.metrics["train/loss"], rel=1e-5)
    written = pd.read_csv(next((tmp_path / "eval").glob("**/metrics.csv")))
    assert "train/r2" in written.columns and not any(c.startswith("test/") for c in written.columns)


def test_predict_writes_the_input_plus_a_prediction_in_original_units(train_with, tmp_path):
    run = train_with()
    pd.DataFrame({"id": [1, 2, 3], "t_u": [21.8, 50.0, 81.9]}).to_csv(tmp_path / "new.csv", index=False)

    output = predict(job_config("predict", tmp_path, f"input={tmp_path / 'new.csv'}", f"output={tmp_path / 'out.csv'}"))
    written = pd.read_csv(output)
    assert list(written.columns) == ["id", "t_u", "t_c_predicted"]
    expected = run.model(torch.tensor([[21.8], [50.0], [81.9]])).detach()[:, 0]
    torch.testing.assert_close(torch.tensor(written["t_c_predicted"].to_numpy(), dtype=torch.float32), expected)

    for name, read in (("out.parquet", pd.read_parquet), ("out.tsv", lambda path: pd.read_csv(path, sep="\t"))):
        cfg = job_config("predict", tmp_path, f"input={tmp_path / 'new.csv'}", f"output={tmp_path / name}")
        again = read(predict(cfg))
        assert again["t_c_predicted"].astype(float).tolist() == pytest.approx(written["t_c_predicted"].tolist())


def test_a_two_target_checkpoint_predicts_two_columns(train_with, tmp_path):
    train_with("experiment=crops_sgd", "trainer.max_epochs=3")

    cfg = job_config("predict", tmp_path, "input=src/linreg/datasets/crops.csv", f"output={tmp_path / 'crops.csv'}")
    written = pd.read_csv(predict(cfg))
    assert {"apples_predicted", "oranges_predicted"} <= set(written.columns) and len(written) == 5


def test_predict_names_missing_columns_and_never_overwrites(train_with, tmp_path):
    train_with("trainer.max_epochs=2")
    pd.DataFrame({"temperature": [1.0]}).to_csv(tmp_path / "wrong.csv", index=False)
    (tmp_path / "taken.csv").write_text("keep me\n")

    with pytest.raises(
        ConfigError, match=r"'t_u' \(the checkpoint's features\) are not in .*wrong.csv; its columns are: temperature"
    ):
        predict(job_config("predict", tmp_path, f"input={tmp_path / 'wrong.csv'}", f"output={tmp_path / 'x.csv'}"))
    with pytest.raises(ConfigError, match="overwrite=true"):
        predict(job_config("predict", tmp_path, f"input={tmp_path / 'wrong.csv'}", f"output={tmp_path / 'taken.csv'}"))
    assert (tmp_path / "taken.csv").read_text() == "keep me\n"


def test_ckpt_path_last_finds_the_newest_run_and_explains_when_there_is_none(tmp_path):
    older, newer = (tmp_path / "train" / name / "checkpoints" for name in ("a", "b"))
    for age, directory in enumerate((older, newer)):
        directory.mkdir(parents=True)
        (directory / "last.ckpt").write_bytes(b"")
        os.utime(directory / "last.ckpt", (1_000_000 + age, 1_000_000 + age))

    assert find_checkpoint("last", str(tmp_path)) == newer / "last.ckpt"
    assert find_checkpoint(str(tmp_path / "train" / "a"), str(tmp_path)) == older / "last.ckpt"
    with pytest.raises(ConfigError, match="Train first"):
        find_checkpoint("last", str(tmp_path / "empty"))


def test_ckpt_path_best_takes_the_best_job_of_the_newest_sweep_and_says_so(tmp_path, caplog):
    caplog.set_level(logging.INFO)

    def job(folder, loss, status="ok", best=True):
        checkpoints = tmp_path / folder / "checkpoints"
        checkpoints.mkdir(parents=True)
        for name in ("last.ckpt", "best.ckpt") if best else ("last.ckpt",):
            (checkpoints / name).write_bytes(b"")
        record = {"status": status, "metrics": {"val/loss": loss}, "optimized_metric": "val/loss"}
        (tmp_path / folder / "status.json").write_text(json.dumps(record))

    job("train/single", 0.1, best=False)  # an older plain run
    sweep = tmp_path / "sweeps" / "s"
    for number, (loss, status) in enumerate([(3.0, "ok"), (1.0, "ok"), (math.nan, "diverged"), (2.0, "ok")]):
        job(f"sweeps/s/{number}_optimizer.lr={number}", loss, status)
    (sweep / "multirun.yaml").write_text("{}\n")

    assert find_checkpoint("best", str(tmp_path)) == sweep / "1_optimizer.lr=1" / "checkpoints" / "best.ckpt"
    assert "the best of 3 jobs of the newest sweep" in caplog.text and "val/loss, 1" in caplog.text
    assert find_checkpoint("last", str(tmp_path)).parent.parent.parent == sweep  # the newest file: a job of it
    assert "ckpt_path=best takes its best" in caplog.text

    os.utime(tmp_path / "train" / "single" / "checkpoints" / "last.ckpt")  # now the plain run is the newest
    assert find_checkpoint("best", str(tmp_path)) == tmp_path / "train" / "single" / "checkpoints" / "last.ckpt"
    assert "its last weights (no validation split)" in caplog.text


def test_predict_never_writes_over_its_input_nor_over_a_users_partial_file(train_with, tmp_path):
    train_with("trainer.max_epochs=2", "~logger")
    source = tmp_path / "new.csv"
    source.write_text("t_u\n50.0\n")
    (tmp_path / "out.csv.partial").write_text("a file of the user's\n")

    with pytest.raises(ConfigError, match="is the input file"):
        predict(job_config("predict", tmp_path, f"input={source}", f"output={source}", "overwrite=true"))
    assert source.read_text() == "t_u\n50.0\n"

    predict(job_config("predict", tmp_path, f"input={source}", f"output={tmp_path / 'out.csv'}"))
    assert (tmp_path / "out.csv.partial").read_text() == "a file of the user's\n"
    assert sorted(p.name for p in tmp_path.glob("*partial*")) == ["out.csv.partial"]  # no temporary file left


def test_predict_says_which_empty_lines_have_no_row(train_with, tmp_path, caplog):
    train_with("trainer.max_epochs=2", "~logger")
    (tmp_path / "new.csv").write_text("t_u,id\n50,a\n\n60,b\n\n")

    written = pd.read_csv(
        predict(job_config("predict", tmp_path, f"input={tmp_path / 'new.csv'}", f"output={tmp_path / 'out.csv'}"))
    )
    assert written["id"].tolist() == ["a", "b"]
    assert "2 empty line(s) of" in caplog.text and "(line 3, 5)" in caplog.text


def test_predictions_beyond_32_bit_floats_are_left_empty_and_named(train_with, tmp_path, caplog):
    (tmp_path / "tenfold.csv").write_text("x,y\n" + "".join(f"{x},{10 * x + 1}\n" for x in range(20)))
    train_with("data=csv", f"data.path={tmp_path / 'tenfold.csv'}", "data.targets=[y]", "~logger")
    (tmp_path / "new.csv").write_text("x\n5\n1e38\n6\n")  # in range itself; ten times it is not

    written = pd.read_csv(
        predict(job_config("predict", tmp_path, f"input={tmp_path / 'new.csv'}", f"output={tmp_path / 'out.csv'}"))
    )
    assert written["y_predicted"].isna().tolist() == [False, True, False]
    assert "1 row(s) of" in caplog.text and "(line 3)" in caplog.text


def test_an_output_that_cannot_be_written_is_named(train_with, tmp_path):
    train_with("trainer.max_epochs=2", "~logger")
    (tmp_path / "new.csv").write_text("t_u\n50.0\n")
    (tmp_path / "a_file").write_text("")

    with pytest.raises(
        ConfigError, match=r"output=.*a_file/out.csv cannot be written: .*a_file is a file, not a folder"
    ):
        predict(
            job_config(
                "predict", tmp_path, f"input={tmp_path / 'new.csv'}", f"output={tmp_path / 'a_file' / 'out.csv'}"
            )
        )


def test_values_beyond_32_bit_floats_are_refused_by_column_and_line(train_with, tmp_path):
    train_with("trainer.max_epochs=2", "~logger")
    (tmp_path / "new.csv").write_text("t_u\n50.0\n\n1e39\n")  # (the empty line counts: the reader skips it)

    with pytest.raises(ConfigError, match=r"Column t_u of .*new.csv holds 1e\+39 on line 4"):
        predict(job_config("predict", tmp_path, f"input={tmp_path / 'new.csv'}", f"output={tmp_path / 'out.csv'}"))
    assert not (tmp_path / "out.csv").exists()
