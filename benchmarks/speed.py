"""Training speed of the template against a hand-written loop, the usual Lightning set-up and a bare one.

python benchmarks/speed.py [--rows N] [--batch-sizes 1024 8192] [--device cpu|cuda] [--quick]

All four train the same `nn.Linear` with MSE and SGD on the same synthetic rows, in one process:

- raw: a minimal PyTorch loop over shuffled index batches, the ceiling to approach;
- naive: a LightningModule that logs every step, fed by `DataLoader(TensorDataset, shuffle=True)`;
- bare: a LightningModule on the template's data path (its data module), nothing logged, no callbacks:
  what Lightning itself costs;
- template: `linreg.fit.fit` with the project's configs, logging, progress bar and checkpoints on.

Then (not with --quick) the book's thermometer fit, start-up times, peak memory, and the time of cv.folds=5
against one run.

It prints its table and nothing else.
"""

import argparse
import contextlib
import io
import itertools
import logging
import math
import os
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import lightning as L
import torch
from hydra import compose, initialize_config_dir
from lightning.pytorch.callbacks import Callback
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

from linreg.data import InMemoryDataModule, Table, make_synthetic
from linreg.fit import fit
from linreg.least_squares import fit_least_squares
from linreg.normalize import Normalizer
from linreg.runtime import lightning_quieted
from linreg.train import train

ROOT = Path(__file__).resolve().parents[1]
TRAIN_SCRIPT = ROOT / "scripts" / "train.py"
LEARNING_RATE = 0.01
# Raw, bare and template throughput and least squares: the best of a few runs, not one run slowed by
# whatever else the machine did then. The slow naive run goes once.
REPEATS = 3
# The same plain SGD steps as the other loops, every epoch (not stopped once converged).
PLAIN_STEPS = [
    "optimizer=sgd",
    f"optimizer.lr={LEARNING_RATE}",
    "optimizer.momentum=0",
    "callbacks.convergence.stop=false",
]
THERMOMETER = (
    [35.7, 55.9, 58.2, 81.9, 56.3, 48.9, 33.9, 21.8, 48.4, 60.4, 68.4],
    [0.5, 14.0, 15.0, 28.0, 11.0, 8.0, 3.0, -4.0, 6.0, 13.0, 21.0],
)


def raw_loop(features: Tensor, targets: Tensor, batch_size: int, epochs: int, scale: float = 1.0) -> float:
    """Seconds for `epochs` passes of the plainest loop that still shuffles."""
    model = nn.Linear(features.shape[1], targets.shape[1]).to(features.device)
    optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE)
    loss_fn = nn.MSELoss()
    synchronize(features.device)
    start = time.perf_counter()
    for _ in range(epochs):
        order = torch.randperm(len(features), device=features.device)
        for first in range(0, len(features), batch_size):
            rows = order[first : first + batch_size]
            loss = loss_fn(model(features[rows] * scale), targets[rows])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    synchronize(features.device)
    return time.perf_counter() - start


def best_of(repeats: int, seconds: Callable[..., float], *args, **kwargs) -> float:
    return min(seconds(*args, **kwargs) for _ in range(repeats))


def seconds_of(function: Callable, *args) -> float:
    start = time.perf_counter()
    function(*args)
    return time.perf_counter() - start


class EpochTimer(Callback):
    """Times the epochs alone, like the raw loop: not the set-up before them nor the pictures after them."""

    def __init__(self) -> None:
        self.start = self.last_epoch_end = self.train_end = math.nan

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.start = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.last_epoch_end = time.perf_counter()

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.train_end = time.perf_counter()

    @property
    def epochs_seconds(self) -> float:
        return self.last_epoch_end - self.start


class LinearSGD(L.LightningModule):
    """`nn.Linear` trained by SGD: what the Lightning variants below share."""

    def __init__(self, n_features: int, n_targets: int) -> None:
        super().__init__()
        self.linear = nn.Linear(n_features, n_targets)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=LEARNING_RATE)


class NaiveRegressor(LinearSGD):
    """The LightningModule most tutorials write: log the loss on every step."""

    def training_step(self, batch: list[Tensor], batch_idx: int) -> Tensor:
        features, targets = batch
        loss = nn.functional.mse_loss(self.linear(features), targets)
        self.log("train/loss", loss)
        return loss


class BareRegressor(LinearSGD):
    """The least a LightningModule does per step: the loss, with Lightning's automatic optimization."""

    def training_step(self, batch: list[Tensor], batch_idx: int) -> Tensor:
        features, targets = batch
        return nn.functional.mse_loss(self.linear(features), targets)


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Nothing but the table on the console: Lightning's notices and the template's progress bar go nowhere."""
    lightning_log = logging.getLogger("lightning.pytorch")
    level = lightning_log.level
    lightning_log.setLevel(logging.WARNING)
    try:
        with lightning_quieted(), contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
            warnings.filterwarnings("ignore", message="You passed in a `val_dataloader` but have no `validation_step`")
            yield
    finally:
        lightning_log.setLevel(level)


def timed_fit(
    module: L.LightningModule, data: DataLoader | L.LightningDataModule, epochs: int, workdir: Path, **options
) -> float:
    """Seconds of the epochs of `trainer.fit`, not the set-up before them."""
    timer = EpochTimer()
    with quiet():
        trainer = L.Trainer(max_epochs=epochs, devices=1, default_root_dir=workdir, callbacks=[timer], **options)
        if isinstance(data, L.LightningDataModule):
            trainer.fit(module, datamodule=data)
        else:
            trainer.fit(module, data)
    return timer.epochs_seconds


def bare_lightning(table: Table, batch_size: int | None, epochs: int, accelerator: str, workdir: Path, **data) -> float:
    """Seconds of the epochs of the bare module on the template's data module: the same rows and batches."""
    datamodule = InMemoryDataModule(table, val_fraction=0, seed=0, batch_size=batch_size, **data)
    bare = dict(logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    module = BareRegressor(len(table.feature_names), len(table.target_names))
    return timed_fit(
        module, datamodule, epochs, workdir, accelerator=accelerator, use_distributed_sampler=False, **bare
    )


def naive_lightning(
    features: Tensor, targets: Tensor, batch_size: int, epochs: int, accelerator: str, workdir: Path
) -> float:
    """Seconds of `trainer.fit` training time with per-row fetching and collation."""
    loader = DataLoader(TensorDataset(features.cpu(), targets.cpu()), batch_size=batch_size, shuffle=True)
    module = NaiveRegressor(features.shape[1], targets.shape[1])
    return timed_fit(module, loader, epochs, workdir, accelerator=accelerator, enable_progress_bar=False)


def template(overrides: list[str], workdir: Path) -> EpochTimer:
    """The epochs (and what follows them) of the template's own path, as scripts/train.py runs it."""
    timer = f"+callbacks.timer._target_={__name__}.EpochTimer"
    with initialize_config_dir(str(ROOT / "configs"), version_base="1.3"):
        cfg = compose("train", overrides=[f"output_dir={workdir}", "print_config=none", timer, *overrides])
    with quiet():
        run = fit(cfg)
    return next(c for c in run.trainer.callbacks if isinstance(c, EpochTimer))


def cross_validation_lines(rows: int, n_features: int, device: str, workdir: Path) -> list[str]:
    """Seconds of a whole run (linreg.train.train, reading and set-up included) and of cv.folds=5 on it."""
    data = ["data=synthetic", f"data.n_samples={rows}", f"data.n_features={n_features}", "~callbacks.progress_bar"]
    data += [f"trainer.accelerator={'gpu' if device == 'cuda' else 'cpu'}", "print_config=none"]

    runs = itertools.count()

    def seconds(*overrides: str) -> float:
        with initialize_config_dir(str(ROOT / "configs"), version_base="1.3"):
            cfg = compose("train", overrides=[f"output_dir={workdir / 'cv' / str(next(runs))}", *data, *overrides])
        with quiet():
            return seconds_of(train, cfg)

    single = min(seconds() for _ in range(REPEATS))
    folds = min(seconds("cv.folds=5") for _ in range(REPEATS))
    return [f"one run {single:.2f} s; cv.folds=5 {folds:.2f} s: {folds / single:.2f} x one run"]


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def throughput_table(
    rows: int, n_features: int, batch_sizes: list[int], epochs: int, device: str, workdir: Path
) -> list[str]:
    """Rows per second of raw, naive, bare Lightning and template at each batch size, and their ratios."""
    accelerator = "gpu" if device == "cuda" else "cpu"
    table, _, _ = make_synthetic(rows, n_features, 1, 0.1, seed=0)
    features, targets = table.features.to(device), table.targets.to(device)
    columns = ["batch", "raw rows/s", "naive rows/s", "bare rows/s", "template rows/s"]
    columns += ["template/bare", "template/naive", "template/raw"]
    lines = ["  ".join(f"{c:>15}" for c in columns)]
    for batch_size in batch_sizes:
        work = rows * epochs
        raw = work / best_of(REPEATS, raw_loop, features, targets, batch_size, epochs)
        naive = work / naive_lightning(
            features, targets, batch_size, epochs, accelerator, workdir / f"naive{batch_size}"
        )
        bare = work / best_of(
            REPEATS,
            bare_lightning,
            table,
            batch_size,
            epochs,
            accelerator,
            workdir / f"bare{batch_size}",
            normalize="none",
        )
        overrides = [
            "data=synthetic",
            f"data.n_samples={rows}",
            f"data.n_features={n_features}",
            "data.n_targets=1",
            "data.noise=0.1",
            "data.val_fraction=0",
            "seed=0",
            f"data.batch_size={batch_size}",
            *PLAIN_STEPS,
            f"trainer.max_epochs={epochs}",
            f"trainer.accelerator={accelerator}",
        ]
        runs = [template(overrides, workdir / f"template{batch_size}_{repeat}") for repeat in range(REPEATS)]
        timer = min(runs, key=lambda run: run.epochs_seconds)
        ours = work / timer.epochs_seconds
        cells = [f"{batch_size}", *(f"{v:,.0f}" for v in (raw, naive, bare, ours))]
        cells += [f"{ours / v:.2f}" for v in (bare, naive, raw)]
        lines.append("  ".join(f"{c:>15}" for c in cells))
    least_squares = best_of(REPEATS, seconds_of, fit_least_squares, table, Normalizer(n_features), Normalizer(1))
    lines.append(
        f"least-squares baseline: {least_squares:.3f} s; one template epoch at batch "
        f"{batch_sizes[-1]}: {rows / ours:.3f} s; the pictures after the last epoch: "
        f"{timer.train_end - timer.last_epoch_end:.3f} s"
    )
    return lines


def thermometer_fit(workdir: Path) -> list[str]:
    """The book's 5000 full-batch epochs: the template, a bare LightningModule on the same data, the raw loop."""
    ours = template(["experiment=dlwpt_thermometer"], workdir / "thermometer").epochs_seconds
    t_u, t_c = (torch.tensor(column)[:, None] for column in THERMOMETER)
    table = Table(t_u * 0.1, t_c, ["t_un"], ["t_c"])  # the book's t_un = 0.1 * t_u, which the bare module cannot do
    bare = best_of(REPEATS, bare_lightning, table, None, 5000, "cpu", workdir / "bare", shuffle=False, normalize="none")
    raw = best_of(REPEATS, raw_loop, t_u, t_c, batch_size=11, epochs=5000, scale=0.1)
    return [
        f"{'':>12}{'template':>10}{'bare':>10}{'raw':>10}{'template/bare':>15}{'template/raw':>14}",
        f"{'seconds':>12}{ours:>10.2f}{bare:>10.2f}{raw:>10.2f}{ours / bare:>15.2f}{ours / raw:>14.2f}",
    ]


def run_train_script(*arguments: str) -> tuple[float, float]:
    """Wall seconds and peak resident MiB of one `scripts/train.py` process."""
    return measured_process([sys.executable, str(TRAIN_SCRIPT), *arguments])


def measured_process(command: list[str]) -> tuple[float, float]:
    """Wall seconds and peak resident MiB of one process; its output is discarded, a failure raised with it."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(command, cwd=tempfile.gettempdir(), stdout=subprocess.DEVNULL, stderr=errors)
        own_peak_kib = 0
        while not (ended := os.wait4(process.pid, os.WNOHANG))[0]:
            own_peak_kib = max(own_peak_kib, peak_resident_kib(process.pid))
            time.sleep(0.005)
        seconds = time.perf_counter() - start
        _, status, usage = ended
        if os.waitstatus_to_exitcode(status) != 0:
            errors.seek(0)
            raise RuntimeError(f"{' '.join(command)} failed:\n{errors.read().decode(errors='replace')[-2000:]}")
    # wait4's ru_maxrss would do where /proc is missing, but it also counts this (large) benchmark
    # process: a child started by vfork is charged with its parent's peak until it execs.
    return seconds, (own_peak_kib or usage.ru_maxrss) / 1024


def peak_resident_kib(pid: int) -> int:
    """The peak resident memory of the process itself (Linux's VmHWM), 0 where /proc cannot tell."""
    try:
        with open(f"/proc/{pid}/status") as status:
            return next((int(line.split()[1]) for line in status if line.startswith("VmHWM:")), 0)
    except OSError:
        return 0


def command_seconds(*arguments: str) -> float:
    return run_train_script(*arguments)[0]


def startup_lines() -> list[str]:
    """Wall times of commands a user types, each in a new process."""
    return [
        f"scripts/train.py --help: {command_seconds('--help'):.2f} s",
        f"scripts/train.py --cfg job: {command_seconds('--cfg', 'job'):.2f} s",
        f"scripts/train.py to its first optimizer step (whole run of max_steps=1): "
        f"{command_seconds('trainer.max_steps=1', '~logger', '~callbacks'):.2f} s",
    ]


def peak_memory_line(rows: int, n_features: int) -> str:
    """Peak RSS of a training process on `rows` synthetic rows against one on a tiny table."""

    def peak_mib(n_samples: int) -> float:
        data = ["data=synthetic", f"data.n_samples={n_samples}", f"data.n_features={n_features}"]
        return run_train_script(*data, "trainer.max_steps=5", "~logger", "~callbacks")[1]

    baseline, peak = peak_mib(1000), peak_mib(rows)
    data_mib = rows * (n_features + 1) * 4 / 2**20
    return (
        f"peak RSS on {rows:,} x {n_features}: {peak:,.0f} MiB = baseline {baseline:,.0f} MiB + "
        f"{(peak - baseline) / data_mib:.2f} x the data's {data_mib:,.0f} MiB"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=16)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1024, 8192])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=["cpu", "cuda"])
    parser.add_argument("--memory-rows", type=int, default=10_000_000, help="rows of the peak-memory run (0 skips it)")
    parser.add_argument("--cv-rows", type=int, default=100_000, help="rows of the cross-validation timing (0 skips it)")
    parser.add_argument(
        "--quick", action="store_true", help="skip the thermometer, start-up, memory and CV measurements"
    )
    args = parser.parse_args(argv)

    sections: list[tuple[str, Callable[[Path], list[str]]]] = [
        (
            f"Throughput, {args.rows:,} x {args.features} rows, {args.epochs} epochs, {args.device}",
            lambda work: throughput_table(args.rows, args.features, args.batch_sizes, args.epochs, args.device, work),
        ),
    ]
    if not args.quick:
        sections.append(("Thermometer (seed notebook 002), 5000 full-batch epochs", thermometer_fit))
        sections.append(("Start-up", lambda work: startup_lines()))
        if args.memory_rows:
            sections.append(("Memory", lambda work: [peak_memory_line(args.memory_rows, args.features)]))
        if args.cv_rows:
            title = (
                f"Cross-validation, {args.cv_rows:,} x {args.features} rows, the default run (L-BFGS), {args.device}"
            )
            sections.append(
                (title, lambda work: cross_validation_lines(args.cv_rows, args.features, args.device, work))
            )
    report = []
    with tempfile.TemporaryDirectory() as workdir:
        for title, measure in sections:
            report += ["", title, *measure(Path(workdir))]
    print("\n".join(report))


if __name__ == "__main__":
    main()
