"""Bad input gets a short message naming the culprit; divergence, kills and interrupted saves lose nothing."""

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import GRADIENT_STEPS, ROOT, events_of

from linreg.callbacks import BestCheckpoint, LastCheckpoint
from linreg.errors import report_errors
from linreg.train import train

TRAIN = str(ROOT / "scripts" / "train.py")


@pytest.fixture
def run_job(make_config, capsys):
    """Run scripts/train.py's job in this process: returns (exit status, what it printed on stderr)."""

    def run(*overrides: str) -> tuple[int, str]:
        try:
            report_errors(train)(make_config("print_config=none", *overrides))
            status = 0
        except SystemExit as stop:
            status = stop.code
        return status, capsys.readouterr().err

    return run


def write(path, text: str | bytes):
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


CSV_CASES = {
    "missing file": (None, [], ["no such file"]),
    "a directory": ("DIR", [], ["is a directory"]),
    "a named pipe": ("FIFO", [], ["is not a regular file"]),
    "a loop of symbolic links": ("LOOP", [], ["symbolic link that leads to no file"]),
    "not UTF-8": (b"x,y\n\xe9t\xe9,2\n", [], ["'x' hold text that is not UTF-8", "save the file as UTF-8"]),
    "not a csv": (b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe\xfa binary", [], ["could not be read as a CSV"]),
    "empty file": ("", [], ["is empty"]),
    "header only": ("x,y\n", [], ["has a header (x, y) but no rows"]),
    "missing target": ("x,y\n1,2\n2,3\n3,5\n", ["data.targets=[price]"], ["price", "its columns are: x, y"]),
    "target is also a feature": (
        "x,y\n1,2\n2,3\n",
        ["data.features=[x,y]"],
        ["y", "data.targets and in data.features"],
    ),
    "text column": ("x,y\n1,2\nabc,3\n", [], ["Column x", "not numeric", "line 3", "'abc'"]),
    "blank cells": ("x,y\n1,2\n,3\n5,6\n", [], ["x (1 blank)", "data.impute=median", "data.impute=drop"]),
    "an infinite cell": ("x,y\n1,2\n4,inf\n5,6\n", [], ["Column y", "holds inf on line 3"]),
    "beyond float32": ("x,y\n1,2\n2,1e300\n", [], ["Column y", "line 3", "32-bit"]),
}


@pytest.mark.parametrize("case", CSV_CASES)
def test_bad_csv_files_are_named_with_what_to_do(run_job, tmp_path, case):
    content, extra, words = CSV_CASES[case]
    path = tmp_path / "table.csv"
    if content == "DIR":
        path.mkdir()
    elif content == "FIFO":
        os.mkfifo(path)
    elif content == "LOOP":
        path.symlink_to(tmp_path / "other.csv")
        (tmp_path / "other.csv").symlink_to(path)
    elif content is not None:
        write(path, content)

    status, message = run_job("data=csv", f"data.path={path}", "data.targets=[y]", *extra)
    assert status == 1
    assert message.startswith("Error: ") and "Traceback" not in message
    for word in words:
        assert word in message


def test_impute_drop_leaves_out_the_blank_rows_and_says_how_many(train_with, tmp_path, caplog):
    path = write(tmp_path / "table.csv", "x,y\n1,2\n,3\n4,\n5,6\n6,7\n7,8\n")
    run = train_with(
        "data=csv",
        f"data.path={path}",
        "data.targets=[y]",
        "data.impute=drop",
        "data.val_fraction=0",
        "trainer.max_epochs=2",
    )

    assert len(run.datamodule.train) == 4
    assert "Left out 2 of 6 rows" in caplog.text and "1 with a blank target (y); 1 with blank features" in caplog.text


@pytest.mark.parametrize(
    "overrides, words",
    [
        (["data=crops", "data.val_fraction=0.6", "data.test_fraction=0.3"], ["5 rows", "too few"]),
        (["data.val_fraction=-0.1"], ["data.val_fraction=-0.1"]),
        (["data.val_fraction=0.6", "data.test_fraction=0.4"], ["leaves no training rows"]),
        (["data.batch_size=0"], ["data.batch_size=0", "1 or more rows"]),
        (["trainer.gradient_clip_val=-1"], ["trainer.gradient_clip_val=-1", "0 or more"]),
        (["trainer.accumulate_grad_batches=0"], ["trainer.accumulate_grad_batches=0", "1 or more"]),
        (["trainer.max_epochs=abc"], ["trainer.max_epochs='abc'", "a whole number"]),
        (["trainer.max_epochs=2.5"], ["trainer.max_epochs=2.5", "a whole number"]),
        (["optimizer.lr=abc"], ["optimizer.lr='abc'", "a number"]),
        (["data.batch_size=0.5"], ["data.batch_size=0.5", "a whole number or null"]),
        (["seed=-1"], ["seed=-1", "0 or more"]),
        (["scheduler=step", "scheduler.interval=week"], ["scheduler.interval='week'", "epoch, step"]),
        (["data=csv"], ["data.path is required"]),
        (["data.val_fraction=0", "optimized_metric=val/r2"], ["optimized_metric=val/r2", "data.val_fraction"]),
        (["trainer.max_epochs=0"], ["trainer.max_epochs=0"]),
        (["optimizer.lr=-0.1"], ["optimizer.lr=-0.1"]),
        (["data.normalize=zscore"], ["data.normalize='zscore'", "none, scale, standardize, minmax"]),
        (["model.loss=hinge"], ["model.loss='hinge'", "mse, l1, huber"]),
        (["ckpt_path=nowhere/last.ckpt"], ["ckpt_path=nowhere/last.ckpt", "no such checkpoint"]),
    ],
)
def test_bad_settings_are_named_with_what_to_do(run_job, overrides, words):
    status, message = run_job(*overrides)

    assert status == 1 and message.startswith("Error: ") and "Traceback" not in message
    assert len(message.strip().splitlines()) == 1  # one paragraph
    for word in words:
        assert word in message


@pytest.mark.slow
def test_an_unknown_optimizer_lists_the_choices(tmp_path):
    result = subprocess.run([sys.executable, TRAIN, "optimizer=nadam"], cwd=tmp_path, capture_output=True, text=True)

    assert result.returncode == 1
    assert "optimizer/nadam" in result.stderr and "adam" in result.stderr and "sgd" in result.stderr


def test_divergence_stops_at_once_says_why_and_keeps_the_last_finite_checkpoint(run_job, tmp_path):
    # The book's settings without the normalization (seed notebook 002): lr 1e-2 on raw t_u.
    status, message = run_job(
        "experiment=dlwpt_thermometer", "data.normalize=none", "callbacks.last_checkpoint.interval_seconds=0"
    )

    assert status == 1
    assert "Training diverged at epoch 11 (step 11)" in message
    assert "last finite loss" in message and "optimizer.lr=0.01" in message and "data.normalize=standardize" in message
    assert '"status": "diverged"' in (tmp_path / "status.json").read_text()
    kept = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert kept["global_step"] == 10 and all(torch.isfinite(v).all() for v in kept["state_dict"].values())


def test_the_same_seed_gives_bitwise_the_same_weights(train_with, tmp_path):
    settings = ["data=synthetic", "data.n_samples=2000", "data.batch_size=32", "trainer.max_epochs=3", "~logger"]
    first = train_with(*settings)
    second = train_with(*settings, f"output_dir={tmp_path / 'again'}")

    assert torch.equal(first.model.linear.weight, second.model.linear.weight)
    assert torch.equal(first.model.linear.bias, second.model.linear.bias)


def test_an_interrupted_save_leaves_the_previous_last_checkpoint_loadable(train_with, tmp_path, monkeypatch):
    run = train_with(*GRADIENT_STEPS, "trainer.max_epochs=2", "~logger")
    path = tmp_path / "checkpoints" / "last.ckpt"
    before = path.read_bytes()

    def killed_midway(*args, **kwargs):
        raise KeyboardInterrupt  # as if the process were stopped while writing

    monkeypatch.setattr(torch, "save", killed_midway)
    with pytest.raises(KeyboardInterrupt):
        LastCheckpoint(str(path.parent)).save(run.trainer)
    assert path.read_bytes() == before
    assert torch.load(path, weights_only=True)["global_step"] == 2


RESUMABLE = [
    "data=synthetic",
    "data.n_samples=20000",
    "data.batch_size=64",
    "optimizer=sgd",
    "optimizer.momentum=0.9",
    "optimizer.lr=0.01",
    "callbacks.convergence.stop=false",
    "trainer.max_epochs=10",
    "callbacks.last_checkpoint.interval_seconds=0",
    "print_config=none",
]
STEPS_PER_EPOCH = 16000 // 64  # 20 % of the rows are held out for validation


def start(tmp_path, run_dir: str, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, TRAIN, *RESUMABLE, f"hydra.run.dir={tmp_path / run_dir}", *extra],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def saved_epoch(path) -> int:
    try:
        return torch.load(path, weights_only=True)["epoch"]
    except (FileNotFoundError, RuntimeError, EOFError):
        return -1


@pytest.mark.slow
def test_a_killed_run_resumes_to_exactly_the_weights_of_an_uninterrupted_one(tmp_path):
    uninterrupted, killed = start(tmp_path, "whole"), start(tmp_path, "killed")
    checkpoint = tmp_path / "killed" / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 240
    while saved_epoch(checkpoint) < 3 and time.monotonic() < deadline and killed.poll() is None:
        time.sleep(0.05)
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait()
    assert 3 <= saved_epoch(checkpoint) < 9, "the run was not killed in the middle of training"

    resumed = start(tmp_path, "resumed", f"ckpt_path={tmp_path / 'killed'}")
    assert resumed.wait(timeout=300) == 0 and uninterrupted.wait(timeout=300) == 0
    final = {
        name: torch.load(tmp_path / name / "checkpoints" / "last.ckpt", weights_only=True)
        for name in ("whole", "resumed")
    }
    assert final["resumed"]["global_step"] == final["whole"]["global_step"] == 10 * STEPS_PER_EPOCH
    for key, value in final["whole"]["state_dict"].items():
        assert torch.equal(final["resumed"]["state_dict"][key], value), key
    events = events_of(tmp_path / "resumed")
    assert events.Scalars("train/loss")[0].step > 3 * STEPS_PER_EPOCH  # the curve goes on where it stopped


@pytest.fixture
def thermometer_checkpoint(train_with, tmp_path):
    """A real checkpoint of the default run, and the bytes of it."""
    train_with("trainer.max_epochs=2", "~logger", f"output_dir={tmp_path / 'first'}")
    return tmp_path / "first" / "checkpoints" / "last.ckpt"


def crafted(tmp_path, name: str, content: bytes):
    path = tmp_path / name
    path.write_bytes(content)
    return path


@pytest.mark.parametrize(
    "case, words",
    [
        ("empty", ["not a checkpoint this template can load safely"]),
        ("truncated", ["not a checkpoint this template can load safely"]),
        ("runs code", ["not a checkpoint this template can load safely"]),
        ("other columns", ["feature columns are temperature, rainfall, humidity", "this run's are t_u"]),
        ("other normalization", ["normalized differently", "data.normalize"]),
    ],
)
def test_resuming_from_a_checkpoint_that_cannot_continue_this_run_is_refused(
    run_job, train_with, thermometer_checkpoint, tmp_path, case, words
):
    marker = tmp_path / "code_ran"
    if case == "empty":
        path = crafted(tmp_path, "empty.ckpt", b"")
    elif case == "truncated":
        path = crafted(tmp_path, "truncated.ckpt", thermometer_checkpoint.read_bytes()[:2000])
    elif case == "runs code":
        path = tmp_path / "evil.ckpt"
        torch.save({"state_dict": {}, "hyper_parameters": {"x": RunsCode(marker)}}, path)
    elif case == "other columns":
        train_with("data=crops", "trainer.max_epochs=1", "~logger", f"output_dir={tmp_path / 'crops'}")
        path = tmp_path / "crops" / "checkpoints" / "last.ckpt"
    else:
        path = thermometer_checkpoint
    normalize = ["data.normalize=minmax"] if case == "other normalization" else []

    status, message = run_job(f"ckpt_path={path}", "trainer.max_epochs=4", *normalize)
    assert status == 1 and message.startswith("Error: ") and "Traceback" not in message
    assert len(message.strip().splitlines()) == 1
    for word in words:
        assert word in message
    assert not marker.exists()


class RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_ckpt_path_last_resumes_the_newest_run_of_this_data_and_says_which(
    train_with, make_config, tmp_path, monkeypatch, caplog
):
    monkeypatch.chdir(tmp_path)
    caplog.set_level(logging.INFO, logger="linreg")
    logs = tmp_path / "logs" / "train"
    train_with(*GRADIENT_STEPS, "trainer.max_epochs=2", "~logger", f"output_dir={logs / 'thermometer'}")
    train_with(*GRADIENT_STEPS, "data=crops", "trainer.max_epochs=2", "~logger", f"output_dir={logs / 'crops'}")

    run = train_with(
        *GRADIENT_STEPS, "trainer.max_epochs=4", "~logger", "ckpt_path=last", f"output_dir={tmp_path / 'resumed'}"
    )
    assert run.trainer.global_step == 4  # two epochs of one step went on from the thermometer run's two
    assert f"resuming from {Path('logs') / 'train' / 'thermometer' / 'checkpoints' / 'last.ckpt'}" in caplog.text


def test_a_resumed_run_keeps_the_best_checkpoint_of_the_whole_run(train_with, tmp_path):
    settings = [*GRADIENT_STEPS, "data.val_fraction=0.3", "~logger", f"ckpt_path={tmp_path / 'first'}"]
    first = train_with(*settings[:-1], "trainer.max_epochs=5", f"output_dir={tmp_path / 'first'}")
    same = train_with(*settings, "trainer.max_epochs=5", f"output_dir={tmp_path / 'same'}")  # nothing left to train
    longer = train_with(*settings, "trainer.max_epochs=8", f"output_dir={tmp_path / 'longer'}")

    def best(run) -> BestCheckpoint:
        return next(c for c in run.trainer.callbacks if isinstance(c, BestCheckpoint))

    old = tmp_path / "first" / "checkpoints" / "best.ckpt"
    assert (tmp_path / "same" / "checkpoints" / "best.ckpt").read_bytes() == old.read_bytes()
    assert best(same).best_model_score == best(first).best_model_score
    assert best(longer).best_model_score <= best(first).best_model_score  # the resumed epochs had to beat it
    assert best(longer).best_model_path == str(tmp_path / "longer" / "checkpoints" / "best.ckpt")


def hostile_payloads(sentinel: Path, marker: Path) -> dict[str, dict]:
    """Config-like dictionaries that would write files or run commands if anything instantiated them."""
    return {
        "builtins.open": {"_target_": "builtins.open", "file": str(sentinel), "mode": "w"},
        "shutil.copyfile": {"_target_": "shutil.copyfile", "src": "/etc/hostname", "dst": str(sentinel)},
        "os.system": {"_target_": "os.system", "command": f"touch {marker}"},
        "subprocess.run": {"_target_": "subprocess.run", "args": ["touch", str(marker)]},
        "pathlib.Path.write_text": {"_target_": "pathlib.Path.write_text", "self": str(sentinel), "data": "x"},
    }


@pytest.mark.parametrize("script", ["eval", "predict", "train"])
def test_crafted_checkpoints_never_run_code_or_touch_files(train_with, make_config, tmp_path, script):
    from conftest import job_config

    from linreg.evaluate import evaluate
    from linreg.predict import predict

    sentinel, marker = tmp_path / "sentinel.txt", tmp_path / "code_ran"
    sentinel.write_text("keep me\n")
    (tmp_path / "new.csv").write_text("t_u\n50.0\n")
    train_with("trainer.max_epochs=1", "~logger", f"output_dir={tmp_path / 'real'}")
    real = torch.load(tmp_path / "real" / "checkpoints" / "last.ckpt", weights_only=True)
    crafted = {"pickle": None}
    for name, payload in hostile_payloads(sentinel, marker).items():
        crafted[f"{name} as data settings"] = {**real, "datamodule_hyper_parameters": payload}
        crafted[f"{name} as model settings"] = {**real, "hyper_parameters": {**real["hyper_parameters"], **payload}}
        crafted[f"{name} as the whole file"] = payload

    for case, content in crafted.items():
        path = tmp_path / "logs" / case.replace(" ", "_") / "checkpoints" / "last.ckpt"
        path.parent.mkdir(parents=True)
        torch.save(RunsCode(marker) if content is None else content, path)
        try:
            if script == "eval":
                evaluate(job_config("eval", tmp_path, f"ckpt_path={path}", "~logger"))
            elif script == "predict":
                out = tmp_path / f"{case}.csv"
                predict(
                    job_config(
                        "predict", tmp_path, f"ckpt_path={path}", f"input={tmp_path / 'new.csv'}", f"output={out}"
                    )
                )
            else:
                train(make_config("trainer.max_epochs=2", "~logger", "print_config=none", f"ckpt_path={path}"))
        except Exception as error:  # a refusal (a sentence) or a run that ignored the payload: both are safe
            assert "Traceback" not in str(error)
        assert sentinel.read_text() == "keep me\n", case
        assert not marker.exists(), case
