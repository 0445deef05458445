"""Habits from Lightning and the well-known templates: debug presets, the config tree, tags, lr_find."""

import logging
import math
import subprocess
import sys

import pytest
from conftest import CONFIGS, ROOT
from hydra import compose, initialize_config_dir

from linreg.evaluate import evaluate
from linreg.report import show_config
from linreg.sweeps import job_number
from linreg.train import train


def test_fast_dev_run_passes_one_batch_through_every_loop_and_writes_nothing(train_with, tmp_path):
    run = train_with("debug=fdr")

    assert {"train/loss", "val/loss", "test/loss"} <= set(run.metrics) and run.trainer.global_step == 1
    assert not (tmp_path / "checkpoints").exists() and not list(tmp_path.glob("events.out.tfevents.*"))


def test_limit_runs_three_short_epochs(train_with):
    run = train_with("debug=limit", "data=synthetic", "data.n_samples=10000", "data.batch_size=256")

    assert run.trainer.current_epoch == 3 and run.trainer.global_step == 15


@pytest.mark.parametrize("data", ["thermometer", "crops", "synthetic"])
def test_overfit_drives_the_loss_of_two_batches_to_zero(train_with, data):
    run = train_with("debug=overfit", f"data={data}", "~logger")

    assert run.metrics["train/loss"] < 1e-6


def test_profiler_prints_its_report_and_saves_it_in_the_run(train_with, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    train_with("debug=profiler", "trainer.max_epochs=3")

    assert "on_train_epoch_end" in (tmp_path / "fit-profile.txt").read_text()
    assert "FIT Profiler Report" in caplog.text and "on_train_epoch_end" in caplog.text


@pytest.mark.slow
def test_every_experiment_survives_a_fast_dev_run_sweep(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "train.py"),
            "-m",
            "experiment=glob(*)",
            "debug=fdr",
            "print_config=none",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    experiments = sorted(p.stem for p in (ROOT / "configs" / "experiment").glob("*.yaml"))
    (sweep,) = (tmp_path / "logs" / "sweeps").iterdir()
    jobs = sorted(p for p in sweep.iterdir() if job_number(p) is not None)
    assert len(jobs) == len(experiments) >= 3
    assert (
        sorted(job.joinpath(".hydra", "overrides.yaml").read_text().split("experiment=")[1].split()[0] for job in jobs)
        == experiments
    )


def test_the_config_tree_and_tags_are_saved_with_the_run(make_config, tmp_path, capsys):
    train(make_config("tags=[baseline,first-try]", "trainer.max_epochs=2", "print_config=full"))

    tree = (tmp_path / "config_tree.txt").read_text()
    assert "optimizer" in tree and "torch.optim.LBFGS" in tree and "first-try" in tree
    assert "torch.optim.LBFGS" in capsys.readouterr().out  # printed too (print_config=full)
    assert "baseline,first-try" in (tmp_path / "hparams.yaml").read_text()


def test_by_default_only_the_overrides_are_printed_and_the_whole_tree_is_saved(make_config, tmp_path, capsys):
    cfg = make_config("data=crops")
    show_config(cfg, tmp_path / "config_tree.txt", "overrides", ["data=crops", "optimizer.lr=0.1"])
    show_config(cfg, tmp_path / "quiet.txt", "none", ["data=crops"])

    (line,) = capsys.readouterr().out.splitlines()
    assert line.startswith("Overrides: data=crops optimizer.lr=0.1") and str(tmp_path / "config_tree.txt") in line
    assert "crops.csv" in (tmp_path / "config_tree.txt").read_text() and (tmp_path / "quiet.txt").is_file()


def test_lr_find_suggests_a_rate_that_trains_raw_thermometer_data_without_diverging(train_with, tmp_path):
    run = train_with(
        "tune=lr_find", "tune.apply=true", "data.normalize=none", "optimizer=sgd", "trainer.max_epochs=200"
    )

    lr = run.model.optimizers().param_groups[0]["lr"]
    assert 0 < lr < 1e-3 and math.isfinite(run.metrics["train/loss"])
    assert run.metrics["train/loss"] < 100  # it learned: the first epoch's loss is in the hundreds
    assert (tmp_path / "plots" / "lr_find.png").is_file()


def test_lightning_banners_and_tips_are_not_printed(train_with, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    train_with("trainer.max_epochs=1", "~logger")
    with initialize_config_dir(str(CONFIGS), version_base="1.3"):
        evaluate(compose("eval", overrides=[f"ckpt_path={tmp_path}", f"output_dir={tmp_path / 'eval'}", "~logger"]))

    assert "GPU available" not in caplog.text and "TPU available" not in caplog.text and "Tip:" not in caplog.text
    assert "`Trainer.fit` stopped" in caplog.text  # Lightning's other notices still come through
