"""The commands users type, run as new processes (kept few: each one starts Python, torch and Lightning)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
TRAIN = str(ROOT / "scripts" / "train.py")


def start_train(cwd: Path, *overrides: str) -> subprocess.Popen:
    env = {**os.environ, "HYDRA_FULL_ERROR": "0"}
    return subprocess.Popen(
        [sys.executable, TRAIN, *overrides],
        cwd=cwd,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


@pytest.mark.slow
def test_two_runs_started_together_each_get_their_own_directory_and_predict_uses_the_newest(tmp_path):
    runs = [start_train(tmp_path, "trainer.max_epochs=5", "optimizer=adam", "optimizer.lr=0.5") for _ in range(2)]
    outputs = [run.communicate(timeout=300)[0] for run in runs]

    assert [run.returncode for run in runs] == [0, 0], outputs
    run_dirs = sorted((tmp_path / "logs" / "train").iterdir())
    assert len(run_dirs) == 2
    for run_dir in run_dirs:
        assert (run_dir / "checkpoints" / "last.ckpt").is_file()
        assert list(run_dir.glob("events.out.tfevents.*"))
        assert "torch.optim.Adam" in (run_dir / ".hydra" / "config.yaml").read_text()
        assert "optimizer=adam" in (run_dir / ".hydra" / "overrides.yaml").read_text()
    for output in outputs:
        assert "t_c = " in output and "Final metrics" in output

    (tmp_path / "new.csv").write_text("t_u\n50.0\n")
    predict = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "predict.py"), "input=new.csv", "output=out.csv"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert predict.returncode == 0, predict.stderr
    assert (tmp_path / "out.csv").read_text().splitlines()[0] == "t_u,t_c_predicted"


@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
@pytest.mark.parametrize(
    "flag, expected", [("--help", "optimizer:"), ("--cfg", "optimizer:"), ("--info", "Config search path")]
)
def test_hydras_own_flags_work_without_training(tmp_path, flag, expected):
    arguments = [flag, "job"] if flag == "--cfg" else [flag]
    result = subprocess.run(
        [sys.executable, TRAIN, *arguments], cwd=tmp_path, capture_output=True, text=True, check=True
    )

    assert expected in result.stdout
    assert not (tmp_path / "logs").exists()


def test_help_lists_each_group_with_its_choices_and_no_shared_file(tmp_path):
    result = subprocess.run([sys.executable, TRAIN, "--help"], cwd=tmp_path, capture_output=True, text=True, check=True)

    choices = dict(line.split(": ", 1) for line in result.stdout.split("== Config ==")[0].splitlines() if ": " in line)
    assert choices["data"].split(", ") == ["anscombe", "crops", "csv", "synthetic", "thermometer"]
    assert "lbfgs" in choices["optimizer"] and "onecycle" in choices["scheduler"]
    assert "_common" not in result.stdout and "data_defaults" not in result.stdout
