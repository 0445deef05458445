"""Bad input gets a short message naming the culprit; divergence, kills and interrupted saves lose nothing."""

import errno
import io
import json
import logging
import os
import random
import signal as signal_module
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import GRADIENT_STEPS, ROOT, SGD_STEPS, events_of, job_config
from lightning.pytorch.callbacks import Callback

from linreg import runtime
from linreg.callbacks import BestCheckpoint, LastCheckpoint
from linreg.errors import ConfigError, Interrupted, explanation, report_errors
from linreg.evaluate import evaluate
from linreg.fit import fit
from linreg.predict import predict
from linreg.runtime import replaced_atomically, write_json
from linreg.signals import console_outlives_reader, interruptible
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
    settings = ["data=synthetic", "data.n_samples=1000", "data.batch_size=32", "trainer.max_epochs=2", "~logger"]
    settings += ["optimizer=adam"]  # (any optimizer: shuffled batches in the seed's order)
    first = train_with(*settings)
    second = train_with(*settings, f"output_dir={tmp_path / 'again'}")

    assert torch.equal(first.model.linear.weight, second.model.linear.weight)
    assert torch.equal(first.model.linear.bias, second.model.linear.bias)


def test_an_interrupted_save_leaves_the_previous_last_checkpoint_loadable_and_nothing_in_tmpdir(
    train_with, tmp_path, monkeypatch
):
    run = train_with(*GRADIENT_STEPS, "trainer.max_epochs=2", "~logger")
    path = tmp_path / "checkpoints" / "last.ckpt"
    before = path.read_bytes()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmpdir"))  # ($TMPDIR)
    (tmp_path / "tmpdir").mkdir()

    def killed_midway(checkpoint, filepath):  # the writer, stopped halfway through the file
        Path(filepath).write_bytes(before[: len(before) // 2])
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", killed_midway)
    with pytest.raises(KeyboardInterrupt):
        LastCheckpoint(str(path.parent)).save(run.trainer)
    assert path.read_bytes() == before
    assert torch.load(path, weights_only=True)["global_step"] == 2
    assert sorted(p.name for p in path.parent.iterdir()) == ["last.ckpt"]  # the half-written file is gone
    assert not any((tmp_path / "tmpdir").iterdir())


class SignalAt(Callback):
    """Sends this process `signal` after training batch `step` (+callbacks.signal._target_=test_robustness.SignalAt),
    as a scheduler's SIGTERM or a Ctrl-C would arrive."""

    def __init__(self, signal: str, step: int) -> None:
        self.signal, self.step = getattr(signal_module, signal), step

    def on_train_batch_end(self, trainer, *args) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), self.signal)


@pytest.fixture
def ctrl_c_restored():
    """Lightning ignores SIGINT once it has caught one (a second Ctrl-C must not break its shutdown)."""
    yield
    signal_module.signal(signal_module.SIGINT, signal_module.default_int_handler)


@pytest.mark.parametrize(("signal", "exit_status"), [("SIGTERM", 143), ("SIGINT", 130)])
@pytest.mark.filterwarnings("ignore:You're resuming from a checkpoint that ended before the epoch ended")
def test_sigterm_and_ctrl_c_save_last_ckpt_where_training_got_to_and_say_how_to_go_on(
    run_job, make_config, tmp_path, ctrl_c_restored, signal, exit_status
):
    settings = ["data=synthetic", "data.n_samples=1000", "data.batch_size=100", "optimizer=adam", *GRADIENT_STEPS[3:]]
    stopped = f"+callbacks.signal={{_target_: test_robustness.SignalAt, signal: {signal}, step: 13}}"
    first = tmp_path / "first"
    status, _ = run_job(*settings, "trainer.max_epochs=3", "~logger", stopped, f"output_dir={first}")

    assert status == exit_status
    record = json.loads((first / "status.json").read_text())
    assert record["status"] == "interrupted"
    assert record["message"].startswith(f"Interrupted by {signal} at epoch 1, step 13. {first / 'checkpoints'}")
    assert torch.load(first / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 13  # mid-epoch 1
    resumed = fit(make_config(*settings, "trainer.max_epochs=3", "~logger", f"ckpt_path={first}"))
    assert resumed.trainer.global_step == 3 * 8 and resumed.trainer.current_epoch == 3  # Lightning's own count


def test_sigterm_outside_lightnings_fit_is_an_interruption_too():
    with pytest.raises(Interrupted, match="Interrupted by SIGTERM"), interruptible():
        os.kill(os.getpid(), signal_module.SIGTERM)
        time.sleep(5)  # (the signal arrives before this ends)
    assert signal_module.getsignal(signal_module.SIGTERM) is signal_module.SIG_DFL


@pytest.mark.slow
def test_a_closed_stdout_does_not_stop_training_and_sigterm_ends_it_with_143_and_the_resume_command(tmp_path):
    run_dir = tmp_path / "run"
    job = subprocess.Popen(
        [sys.executable, TRAIN, *RESUMABLE, "trainer.max_epochs=1000", f"hydra.run.dir={run_dir}"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    job.stdout.readline()
    job.stdout.close()  # as `| head -1` does
    deadline = time.monotonic() + 120
    while saved_epoch(run_dir / "checkpoints" / "last.ckpt") < 1 and time.monotonic() < deadline and job.poll() is None:
        time.sleep(0.05)
    job.send_signal(signal_module.SIGTERM)

    assert job.wait(timeout=60) == 143
    record = json.loads((run_dir / "status.json").read_text())
    assert record["status"] == "interrupted"
    assert record["resume"].startswith(f"python {TRAIN} data=synthetic")
    assert record["resume"].endswith(f"trainer.max_epochs=1000 ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}")


RESUMABLE = [
    "data=synthetic",
    "data.n_samples=4000",
    "data.batch_size=64",
    "optimizer=sgd",
    "optimizer.momentum=0.9",
    "optimizer.lr=0.01",
    "callbacks.convergence.stop=false",
    "trainer.max_epochs=10",
    "callbacks.last_checkpoint.interval_seconds=0",
    "print_config=none",
]
STEPS_PER_EPOCH = 3200 // 64  # 20 % of the rows are held out for validation


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
def test_a_killed_run_resumes_to_exactly_the_weights_of_an_uninterrupted_one(train_with, tmp_path):
    killed = start(tmp_path, "killed")
    checkpoint = tmp_path / "killed" / "checkpoints" / "last.ckpt"
    seed = int(time.time())
    moments = random.Random(seed)  # killed after a random epoch, at a random moment of the next one
    after_epoch = moments.randint(1, 5)
    deadline = time.monotonic() + 240
    while saved_epoch(checkpoint) < after_epoch and time.monotonic() < deadline and killed.poll() is None:
        time.sleep(0.02)
    time.sleep(moments.uniform(0, 0.3))
    os.kill(killed.pid, signal_module.SIGKILL)
    killed.wait()
    assert after_epoch <= saved_epoch(checkpoint) < 9, f"the run was not killed in the middle of training (seed {seed})"

    resumed = start(tmp_path, "resumed", f"ckpt_path={tmp_path / 'killed'}")
    train_with(*RESUMABLE, f"output_dir={tmp_path / 'whole'}")  # the same run, uninterrupted (in this process)
    assert resumed.wait(timeout=300) == 0
    final = {
        name: torch.load(tmp_path / name / "checkpoints" / "last.ckpt", weights_only=True)
        for name in ("whole", "resumed")
    }
    assert final["resumed"]["global_step"] == final["whole"]["global_step"] == 10 * STEPS_PER_EPOCH
    for key, value in final["whole"]["state_dict"].items():
        assert torch.equal(final["resumed"]["state_dict"][key], value), key
    events = events_of(tmp_path / "resumed")
    assert events.Scalars("train/loss")[0].step > after_epoch * STEPS_PER_EPOCH  # the curve goes on where it stopped


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


def test_a_resume_onto_changed_rows_is_refused_unless_allowed_and_then_goes_on_in_the_checkpoints_scale(
    train_with, tmp_path, caplog
):
    table = tmp_path / "table.csv"
    table.write_text("x,y\n" + "".join(f"{i},{2 * i + 1}\n" for i in range(20)))
    settings = [*GRADIENT_STEPS, "data=csv", f"data.path={table}", "data.targets=[y]", "~logger"]
    first = train_with(*settings, "trainer.max_epochs=2", f"output_dir={tmp_path / 'first'}")
    table.write_text("x,y\n" + "".join(f"{i},{2 * i + 1}\n" for i in range(1, 21)))  # as many rows, other values

    with pytest.raises(ConfigError, match=r"is no longer what it was trained on"):  # eval.py notices too
        evaluate(job_config("eval", tmp_path, f"ckpt_path={tmp_path / 'first'}", "split=train", "~logger"))
    resume = [*settings, "trainer.max_epochs=4", f"ckpt_path={tmp_path / 'first'}"]
    with pytest.raises(ConfigError, match=r"its rows differ \(same counts, other values\).*allow_changed_data=true"):
        train_with(*resume, f"output_dir={tmp_path / 'refused'}")
    allowed = train_with(*resume, "allow_changed_data=true", f"output_dir={tmp_path / 'allowed'}")

    assert allowed.trainer.global_step == 4  # two more steps after the checkpoint's two
    for name, value in first.model.feature_normalizer.state_dict().items():  # the checkpoint's scale, not the new rows'
        assert torch.equal(allowed.model.feature_normalizer.state_dict()[name], value)
    assert "allow_changed_data=true: resuming" in caplog.text and "its rows differ" in caplog.text


def test_a_resume_with_another_optimizer_or_schedule_is_refused(train_with, tmp_path):
    train_with(*GRADIENT_STEPS, "trainer.max_epochs=2", "~logger", f"output_dir={tmp_path / 'sgd'}")
    resume = ["trainer.max_epochs=4", "~logger", f"ckpt_path={tmp_path / 'sgd'}"]

    with pytest.raises(ConfigError, match="trained with another optimizer than this run's LBFGS"):
        train_with(*resume, f"output_dir={tmp_path / 'lbfgs'}")
    with pytest.raises(ConfigError, match="trained without a learning-rate schedule and this run has one"):
        train_with(*resume, *SGD_STEPS, "scheduler=step", f"output_dir={tmp_path / 'scheduled'}")


@pytest.mark.parametrize("scheduler", ["step", "cosine", "plateau", "onecycle"])
def test_an_interrupted_run_with_a_schedule_resumes_to_its_end(train_with, tmp_path, scheduler):
    settings = ["optimizer=adam", "optimizer.lr=0.01", f"scheduler={scheduler}", "trainer.max_epochs=5", "~logger"]
    stopped = ["+callbacks.stop._target_=conftest.StopAfter", "+callbacks.stop.epochs=2", "~callbacks.plots"]
    train_with(*settings, *stopped, f"output_dir={tmp_path / 'first'}")

    resumed = train_with(*settings, f"ckpt_path={tmp_path / 'first'}", "~callbacks.plots")
    assert resumed.trainer.current_epoch == 5


def test_a_one_cycle_schedule_resumed_into_a_longer_run_is_one_sentence(train_with, tmp_path):
    settings = ["optimizer=adam", "optimizer.lr=0.01", "scheduler=onecycle", "~logger", "~callbacks.plots"]
    train_with(*settings, "trainer.max_epochs=3", f"output_dir={tmp_path / 'first'}")

    with pytest.raises(ConfigError, match="schedule runs 3 optimizer steps and this run has 5: a one-cycle"):
        train_with(*settings, "trainer.max_epochs=5", f"ckpt_path={tmp_path / 'first'}")


@pytest.mark.slow
def test_predict_killed_at_any_moment_leaves_no_output_or_a_complete_one(train_with, tmp_path):
    train_with("trainer.max_epochs=1", "~logger", f"output_dir={tmp_path / 'run'}")
    source = tmp_path / "new.csv"
    values = np.random.default_rng(0).uniform(20, 90, 400_000)
    source.write_text("t_u\n" + "\n".join(f"{v:.4f}" for v in values) + "\n")
    expected = predict(job_config("predict", tmp_path, f"input={source}", f"ckpt_path={tmp_path / 'run'}"))
    seed = int(time.time())
    moments = random.Random(seed)

    def start_predict(name: str) -> subprocess.Popen:
        arguments = [f"input={source}", f"output={tmp_path / name / 'out.csv'}", f"ckpt_path={tmp_path / 'run'}"]
        return subprocess.Popen(
            [sys.executable, str(ROOT / "scripts" / "predict.py"), *arguments, f"hydra.run.dir={tmp_path / name}"],
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    # One killed while it writes (its temporary file has appeared), one at a moment drawn from its whole run.
    writing, anytime = start_predict("writing"), start_predict("anytime")
    kill_anytime_at = time.monotonic() + moments.uniform(0.5, 8.0)
    deadline = time.monotonic() + 120
    while writing.poll() is None and not list((tmp_path / "writing").glob(".out.*partial*")):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    time.sleep(moments.uniform(0, 0.2))
    for process, moment in ((writing, time.monotonic()), (anytime, kill_anytime_at)):
        time.sleep(max(0.0, moment - time.monotonic()))
        process.send_signal(signal_module.SIGKILL)
        process.wait()

    for name in ("writing", "anytime"):
        output = tmp_path / name / "out.csv"
        assert not output.exists() or output.read_bytes() == expected.read_bytes(), f"{name}, seed {seed}"


def test_written_files_get_a_new_files_mode_or_that_of_the_file_they_replace(tmp_path):
    umask = os.umask(0o022)
    try:
        write_json(tmp_path / "new.json", {"a": 1})
        kept = tmp_path / "kept.json"
        kept.write_text("{}")
        kept.chmod(0o640)
        write_json(kept, {"a": 2})
    finally:
        os.umask(umask)
    assert (tmp_path / "new.json").stat().st_mode & 0o777 == 0o666 & ~runtime.UMASK
    assert kept.stat().st_mode & 0o777 == 0o640 and json.loads(kept.read_text()) == {"a": 2}


def test_a_console_that_cannot_write_a_letter_shows_its_code_instead_of_losing_the_message(monkeypatch):
    console = io.TextIOWrapper(io.BytesIO(), encoding="latin-1")  # (PYTHONIOENCODING=latin-1)
    monkeypatch.setattr(sys, "stdout", console)
    with console_outlives_reader():
        print("t_c = 0.5368·t_u − 17.30, R² 0.99")
    console.flush()
    assert console.buffer.getvalue().decode("latin-1") == "t_c = 0.5368·t_u \\u2212 17.30, R² 0.99\n"
    assert console.errors == "strict"  # (as it was)


@pytest.mark.parametrize(
    "failure",
    [
        OSError(errno.ENOSPC, "No space left on device"),
        RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598"),  # torch.save's
    ],
)
def test_a_full_disk_is_named_by_the_file_being_written_and_the_space_left(tmp_path, failure):
    target = tmp_path / "checkpoints" / "last.ckpt"
    with pytest.raises(OSError) as raised, replaced_atomically(target) as temporary:
        if isinstance(failure, OSError):
            failure.filename = str(temporary)  # (as a write names the file it failed on)
        raise failure
    message = explanation(raised.value)
    assert message.startswith(f"{target}: ") and f"MB free on the disk of {target.parent}" in message
    assert list(target.parent.iterdir()) == []  # (the temporary file is gone)
