"""Training across machines: torchrun's processes, one run directory, the weights of one process."""

import json
import socket
import subprocess
import sys

import pytest
import torch
from conftest import GRADIENT_STEPS, ROOT, write_parquet_directory

from linreg import launchers
from linreg.errors import ConfigError
from linreg.train import train

TRAIN = str(ROOT / "scripts" / "train.py")
# 2000 rows, all training, streamed in one global batch: half of it in each process.
STREAMED = ["data=csv", "data.targets=y", "data.exclude=[id]", "data.stream=true", "data.val_fraction=0"]
STREAMED += [
    "data.batch_size=2000",
    "data.normalize_targets=true",
    "optimized_metric=train/loss",
    "trainer.max_epochs=5",
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
def test_two_torchrun_nodes_train_the_weights_of_one_process_into_one_run_directory(tmp_path, train_with):
    # Two "machines" on localhost: two torchrun agents meeting at a c10d rendezvous, one process each (gloo),
    # streaming a Parquet directory: each process surveys half of its row groups and reads half of its rows.
    table = write_parquet_directory(tmp_path / "table", rows_per_file=(1000, 1000))
    rendezvous = ["--nnodes=2", "--nproc-per-node=1", "--rdzv-backend=c10d", f"--rdzv-endpoint=127.0.0.1:{free_port()}"]
    command = [sys.executable, "-m", "torch.distributed.run", *rendezvous, "--rdzv-id=test", TRAIN, "trainer=ddp"]
    settings = ["trainer.accelerator=cpu", *GRADIENT_STEPS, *STREAMED, f"data.path={table}"]
    nodes = [
        subprocess.Popen(
            [*command, *settings], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        for _ in range(2)
    ]
    outputs = [node.communicate(timeout=300)[0] for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], outputs
    single = train_with(*GRADIENT_STEPS, *STREAMED, f"data.path={table}", f"output_dir={tmp_path / 'single'}")

    (run_dir,) = (tmp_path / "logs" / "train").iterdir()  # one directory for both processes
    assert run_dir.name.startswith("torchrun_test_")
    assert sorted(p.name for p in run_dir.glob("*.log")) == ["train.log", "train_rank1.log"]
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["last.ckpt"]  # (best.ckpt: by val/loss)
    status = json.loads((run_dir / "status.json").read_text())
    assert status["status"] == "ok" and status["epochs"] == single.trainer.current_epoch == 5
    # The surveys' sums, exchanged, are one process's: the same normalization and least-squares baseline.
    state = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    torch.testing.assert_close(state["feature_normalizer.factor"], single.model.feature_normalizer.factor)
    assert status["coefficient_gap"] == pytest.approx(single.verdict.gap, rel=1e-3)
    # Each process takes half of every batch and the gradients are averaged: the steps of one process.
    torch.testing.assert_close(state["net.weight"], single.model.linear.weight, atol=1e-5, rtol=0)
    torch.testing.assert_close(state["net.bias"], single.model.linear.bias, atol=1e-5, rtol=0)
    assert sum("Run directory:" in output for output in outputs) == 1  # rank 0 alone reports
    assert sum("optimizer.lr=" in output or "[INFO]" in output for output in outputs) <= 1  # rank 1 says nothing


def test_trainer_ddp_without_a_launcher_says_which_to_use(make_config):
    with pytest.raises(ConfigError, match="started by torchrun or srun.*trainer=ddp_spawn"):
        train(make_config("trainer=ddp", "print_config=none"))


def test_a_launcher_never_reuses_the_directory_of_a_finished_run(make_config, tmp_path, monkeypatch):
    for name, value in {"TORCHELASTIC_RUN_ID": "none", "GROUP_WORLD_SIZE": "1", "LOCAL_WORLD_SIZE": "1"}.items():
        monkeypatch.setenv(name, value)
    (tmp_path / "status.json").write_text('{"status": "ok"}\n')

    with pytest.raises(ConfigError, match="holds an earlier run.*--rdzv-id"):
        train(make_config("trainer=ddp", "print_config=none"))
    assert (tmp_path / "status.json").read_text() == '{"status": "ok"}\n'


def test_under_srun_the_processes_nodes_and_run_directory_come_from_slurms_environment(make_config, monkeypatch):
    slurm = {"SLURM_JOB_ID": "123", "SLURM_STEP_ID": "0", "SLURM_NTASKS": "8", "SLURM_NNODES": "2", "SLURM_PROCID": "3"}
    for name, value in slurm.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("RANK", raising=False)

    assert (launchers.launcher(), launchers.rank(), launchers.run_name()) == ("srun", 3, "srun_123.0")
    assert (launchers.log_suffix(), launchers.console_level()) == ("_rank3", "WARNING")
    trainer = make_config("trainer=ddp").trainer
    assert (trainer.strategy, trainer.num_nodes, trainer.devices) == ("ddp", 2, 4)
