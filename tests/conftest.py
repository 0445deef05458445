"""Shared helpers: compose the real configs in-process (no new Python per test) and run them."""

import os

# One thread per test process (and the processes tests start): the suite runs a process per core already, and
# more threads than cores only wait on each other.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import copy
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra._internal.sources_registry import SourcesRegistry
from hydra.core.plugins import Plugins
from lightning.pytorch.callbacks import Callback
from omegaconf import DictConfig
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import linreg  # noqa: F401  (registers the ${pid:} resolver)
from linreg.fit import FittedRun, fit

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"

requires_gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
# Plain gradient steps (one an epoch on the small tables) for as many epochs as asked, not stopped once
# converged: for tests of curves, counts and resuming, which the default L-BFGS would end in one epoch.
SGD_STEPS = ["optimizer=sgd", "optimizer.lr=0.1", "optimizer.momentum=0"]
GRADIENT_STEPS = [*SGD_STEPS, "callbacks.convergence.stop=false"]


@pytest.fixture(scope="session", autouse=True)
def configs_parsed_once():
    """Hydra reads and parses every config file again at each composition (a few hundred a test process): the
    files do not change during the tests, so each is parsed once and handed out as a copy. (The classes to patch
    are those in Hydra's registry of config sources: its plugin scan loads the modules anew.)"""
    parsed: dict = {}

    def once(load_config):
        def load(source, config_path: str):
            key = (type(source), source.path, config_path)
            if key not in parsed:
                parsed[key] = load_config(source, config_path)
            return copy.deepcopy(parsed[key])

        return load

    Plugins.instance()  # (scans the plugins, registering the config source classes)
    sources = [source for source in SourcesRegistry.instance().types.values() if source.scheme() in ("file", "pkg")]
    with pytest.MonkeyPatch.context() as patch:
        for source in sources:
            patch.setattr(source, "load_config", once(source.load_config))
        yield


class StopAfter(Callback):
    """Ends training at the end of epoch `epochs` as an interruption would (the checkpoints save as usual):
    +callbacks.stop._target_=conftest.StopAfter."""

    def __init__(self, epochs: int) -> None:
        self.epochs = epochs

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        trainer.should_stop = trainer.current_epoch + 1 >= self.epochs


def write_parquet_directory(directory, rows_per_file=(700, 1300, 517), row_group_rows=256, seed=0):
    """Parquet files of rows y = x·(1, 2, 3) + 5 + noise with a unique `id` in every row, in several row groups."""
    directory.mkdir()
    generator, first_id = np.random.default_rng(seed), 0
    for number, rows in enumerate(rows_per_file):
        x = generator.normal(size=(rows, 3)) * [1, 10, 100] + [0, 50, -20]
        frame = pd.DataFrame(x, columns=["a", "b", "c"])
        frame["id"] = np.arange(first_id, first_id + rows, dtype=np.float64)
        frame["y"] = x @ [1.0, 2.0, 3.0] + 5 + generator.normal(size=rows) * 0.1
        frame.to_parquet(directory / f"part-{number}.parquet", row_group_size=row_group_rows)
        first_id += rows
    return directory


def events_of(run_dir) -> EventAccumulator:
    """A run's TensorBoard event files, read in full."""
    events = EventAccumulator(str(run_dir), size_guidance={"images": 0, "scalars": 0})
    events.Reload()
    return events


def sweep(tmp_path: Path, *overrides: str) -> tuple[subprocess.CompletedProcess, Path]:
    """`python scripts/train.py -m <overrides>` in tmp_path, as a user types it: its output and its sweep dir."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "train.py"), "-m", *overrides],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (sweep_dir,) = (tmp_path / "logs" / "sweeps").iterdir()
    return result, sweep_dir


def job_config(name: str, tmp_path: Path, *overrides: str) -> DictConfig:
    """configs/<name>.yaml (eval, predict, export) with overrides, its job directory and log_dir in tmp_path."""
    with initialize_config_dir(str(CONFIGS), version_base="1.3"):
        return compose(name, overrides=[f"output_dir={tmp_path / name}", f"log_dir={tmp_path}", *overrides])


@pytest.fixture
def make_config(tmp_path: Path):
    """Compose configs/train.yaml with overrides, writing the run into a temporary directory."""

    def make(*overrides: str) -> DictConfig:
        with initialize_config_dir(str(CONFIGS), version_base="1.3"):
            return compose("train", overrides=[f"output_dir={tmp_path}", *overrides])

    return make


@pytest.fixture
def train_with(make_config):
    """Train in this process with the given overrides, as scripts/train.py would."""

    def train(*overrides: str) -> FittedRun:
        return fit(make_config(*overrides))

    return train
