"""Sweeps: every job in its own directory, failures that do not stop the sweep, one summary, Optuna, DDP."""

import itertools
import json
import subprocess
import sys

import pandas as pd
import pytest
import torch
from conftest import CONFIGS, GRADIENT_STEPS, ROOT, sweep
from hydra import compose, initialize_config_dir

from linreg import MAX_JOB_DIRNAME, job_dirname
from linreg.data import make_synthetic
from linreg.model import Regressor
from linreg.sweeps import format_table, summarize_sweep


@pytest.mark.slow
def test_a_grid_in_parallel_jobs_goes_on_past_diverging_jobs_and_ends_with_a_summary(tmp_path):
    result, sweep_dir = sweep(
        tmp_path,
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        "optimizer=sgd",
        "trainer.max_epochs=100",
        "optimizer.lr=0.05,50",
        "data.batch_size=4,11",
    )

    summary = pd.read_csv(sweep_dir / "summary.csv")
    # Named by number and what varies (in job processes of their own too), not the fixed optimizer=sgd.
    jobs = sorted(p.name for p in sweep_dir.iterdir() if p.is_dir())
    assert jobs == [
        f"{i}_data.batch_size={b},optimizer.lr={lr}"
        for i, (lr, b) in enumerate(itertools.product(["0.05", "50"], ["4", "11"]))
    ]
    assert list(summary["status"]) == ["ok", "ok", "diverged", "diverged"]
    assert summary["objective"].iloc[0] <= summary["objective"].iloc[1]  # best first
    assert all(summary["overrides"].iloc[2:].str.contains("optimizer.lr=50"))
    assert {"train/loss", "val/loss", "val/r2", "epochs", "seconds", "converged", "coefficient_gap"} <= set(
        summary.columns
    )
    for job in jobs:  # each job has its own TensorBoard run
        assert list((sweep_dir / job).glob("events.out.tfevents.*"))
    assert "Sweep summary" in result.stdout and "diverged" in result.stdout
    # The overrides printed once, at the start, not a config tree per job.
    assert result.stdout.count("Sweep of ") == 1 and "optimizer.lr=0.05,50" in result.stdout
    assert "Overrides:" not in result.stdout and "_target_" not in result.stdout
    # Each job's summary points to its statistics instead of printing the table.
    assert "std_error" not in result.stdout and result.stdout.count("coefficients.csv, statistics.json") == 2

    again = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "summarize.py"), str(sweep_dir)], capture_output=True, text=True
    )
    assert again.returncode == 0 and again.stdout.count("diverged") == 2


@pytest.mark.slow
def test_an_optuna_search_of_an_mlp_records_the_best_trial(tmp_path):
    # Any model sweeps: a small MLP, whose jobs record their metrics and no verdict against least squares.
    mlp = ["model=mlp", "model.net.hidden=[8]"]
    result, sweep_dir = sweep(
        tmp_path, "hparams_search=optuna", "hydra.sweeper.n_trials=3", "trainer.max_epochs=20", *mlp
    )

    best = (sweep_dir / "optimization_results.yaml").read_text()
    assert "best_params" in best and "optimizer.lr" in best and "best_value" in best
    assert len(pd.read_csv(sweep_dir / "summary.csv")) == 3
    assert "Best parameters" in result.stdout
    statuses = [json.loads(path.read_text()) for path in sorted(sweep_dir.glob("*/status.json"))]
    assert len(statuses) == 3 and all(status["converged"] is None for status in statuses)
    assert any(status["status"] == "ok" and "val/loss" in status["metrics"] for status in statuses)


@pytest.mark.slow
def test_ddp_on_two_cpu_processes_in_a_sweep_trains_the_weights_of_one_process(tmp_path, train_with):
    data = ["data=synthetic", "data.n_samples=2000", "data.n_features=4", "data.noise=0.01", "data.batch_size=256"]
    data += ["trainer.max_epochs=4"]
    # Mini-batch L-BFGS: its line search evaluates the loss a varying number of times a step, so the ranks must
    # see the same loss (or the gradients' all-reduce hangs), and the same as one process to take its steps.
    data += ["optimizer=lbfgs", "optimizer.line_search_fn=strong_wolfe"]
    _, sweep_dir = sweep(tmp_path, "trainer=ddp_sim", *data)
    single = train_with(*data, f"output_dir={tmp_path / 'single'}")

    _, true_weight, true_bias = make_synthetic(2000, 4, 1, 0.01, seed=42)

    def error(model: Regressor) -> float:
        weight, bias = model.equation()
        return max((weight.float() - true_weight).abs().max(), (bias.float() - true_bias).abs().max()).item()

    job_dir = sweep_dir / "0"  # one job, all its settings fixed: named by its number alone
    status = json.loads((job_dir / "status.json").read_text())
    assert status["status"] == "ok" and status["epochs"] == single.trainer.current_epoch  # (the workers' count)
    assert sorted(p.name for p in (job_dir / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]
    assert len(list(job_dir.glob("plots/*.png"))) == 2
    ddp = Regressor.load_from_checkpoint(job_dir / "checkpoints" / "last.ckpt")
    assert error(ddp) < 0.01
    # Each process takes half of every batch, the gradients and losses are averaged: the steps of one process
    # (up to the order of float sums, which the line searches carry on).
    torch.testing.assert_close(ddp.linear.weight, single.model.linear.weight, atol=1e-4, rtol=0)
    torch.testing.assert_close(ddp.linear.bias, single.model.linear.bias, atol=1e-4, rtol=0)
    assert not (tmp_path / "logs" / "train").exists()  # no stray run directories from the worker processes


def test_ddp_on_an_odd_number_of_streamed_rows_takes_the_steps_of_one_process(train_with, tmp_path):
    # The thermometer's 11 rows streamed from Parquet: whole batches of 6 and 5 rows, each weighted by its rows.
    # (In memory, an odd split: tests/test_any_model.py's MLP on two processes.)
    table = tmp_path / "thermometer.parquet"
    pd.read_csv(ROOT / "src" / "linreg" / "datasets" / "thermometer.csv").to_parquet(table)
    data = ["data=csv", f"data.path={table}", "data.targets=[t_c]", "data.stream=true", "data.val_fraction=0"]
    data += ["data.batch_size=11"]
    settings = [*GRADIENT_STEPS, "trainer.max_epochs=5", *data, "~logger", "~callbacks.plots"]
    train_with(*settings, "trainer=ddp_sim", f"output_dir={tmp_path / 'ddp'}")
    single = train_with(*settings, f"output_dir={tmp_path / 'single'}")

    ddp = Regressor.load_from_checkpoint(tmp_path / "ddp" / "checkpoints" / "last.ckpt")
    torch.testing.assert_close(ddp.net.weight, single.model.net.weight, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(ddp.net.bias, single.model.net.bias, atol=1e-6, rtol=1e-6)


def test_long_overrides_make_a_short_unique_directory_name():
    long_a, long_b = (f"data.path={'/very/deep' * 12}/{name}.csv,optimizer=adam" for name in ("a", "b"))

    names = job_dirname(7, long_a), job_dirname(7, long_b)
    assert all(len(name) == MAX_JOB_DIRNAME and name.startswith("7_data.path=_very_deep") for name in names)
    assert names[0] != names[1] and "/" not in names[0]
    assert job_dirname(0, "") == "0"


def test_the_summary_puts_the_best_first_and_failures_last(tmp_path):
    for job, (status, loss) in enumerate([("ok", 3.0), ("diverged", None), ("ok", 1.0)]):
        (tmp_path / str(job) / ".hydra").mkdir(parents=True)
        (tmp_path / str(job) / ".hydra" / "overrides.yaml").write_text(f"- seed={job}\n")
        metrics = {} if loss is None else {"val/loss": loss, "train/loss": loss}
        record = {"status": status, "metrics": metrics, "epochs": 5, "seconds": 1.0, "optimized_metric": "val/loss"}
        (tmp_path / str(job) / "status.json").write_text(json.dumps(record))
    (tmp_path / "3").mkdir()  # a job that never ended

    rows = summarize_sweep(tmp_path)
    assert [(row["job"], row["status"]) for row in rows] == [(2, "ok"), (0, "ok"), (1, "diverged"), (3, "failed")]
    assert "seed=2" in format_table(rows).splitlines()[1]
    assert (tmp_path / "summary.csv").is_file()


def test_the_slurm_launcher_config_composes():
    with initialize_config_dir(str(CONFIGS), version_base="1.3"):
        cfg = compose("train", overrides=["hydra/launcher=submitit_slurm"], return_hydra_config=True)

    assert cfg.hydra.launcher._target_.endswith("SlurmLauncher")
    assert {"timeout_min", "gpus_per_node", "tasks_per_node", "partition"} <= set(cfg.hydra.launcher)
