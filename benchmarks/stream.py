"""A table larger than memory streamed from Parquet (data.stream=true) against the same table in memory.

python benchmarks/stream.py [--rows 50000000] [--features 16] [--batch-size 8192] [--device cpu|cuda]

It writes `--rows` synthetic float32 rows once, as a directory of Parquet files (row groups of 250,000 rows).
Then, in one process, the template (`linreg.fit.fit`, plain SGD steps, one epoch, no validation split):

- in memory: data.stream=false, the whole table read into memory first: the baseline;
- streamed: data.stream=true, a row group at a time through the shuffle buffer;
- survey: the streamed data module's one pass (normalization and least-squares sums), against one streamed epoch.

Peak memory: `scripts/train.py` on the streamed directory in a fresh process, against the same command on a
directory of 10,000 rows (what Python, torch and Lightning take without data). It prints its table and nothing else.
"""

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from speed import PLAIN_STEPS, run_train_script, template

from linreg.data import CsvDataModule

ROW_GROUP_ROWS = 250_000
FILE_ROWS = 2_000_000
TINY_ROWS = 10_000


def write_table(directory: Path, rows: int, n_features: int, seed: int = 0) -> None:
    """Rows y = x·w + 1 + noise, x standard normal, as Parquet files of FILE_ROWS rows (float32 columns)."""
    directory.mkdir(parents=True)
    generator = np.random.default_rng(seed)
    weight = generator.normal(size=n_features).astype(np.float32)
    for number, start in enumerate(range(0, rows, FILE_ROWS)):
        count = min(FILE_ROWS, rows - start)
        x = generator.standard_normal((count, n_features), dtype=np.float32)
        y = x @ weight + 1 + 0.1 * generator.standard_normal(count, dtype=np.float32)
        columns = {f"x{j}": x[:, j] for j in range(n_features)} | {"y": y}
        pq.write_table(pa.table(columns), directory / f"part-{number:04d}.parquet", row_group_size=ROW_GROUP_ROWS)


def settings(directory: Path, stream: bool, batch_size: int, device: str) -> list[str]:
    """One epoch of plain SGD steps on the whole table, as the command line would set it."""
    return [
        "data=csv",
        f"data.path={directory}",
        "data.targets=[y]",
        f"data.stream={str(stream).lower()}",
        "data.val_fraction=0",
        f"data.batch_size={batch_size}",
        "optimized_metric=train/loss",
        *PLAIN_STEPS,
        "~callbacks.plots",
        "trainer.max_epochs=1",
        f"trainer.accelerator={'gpu' if device == 'cuda' else 'cpu'}",
    ]


def survey_seconds(directory: Path, batch_size: int) -> float:
    """The streamed data module's setup: its one pass over every row group."""
    start = time.perf_counter()
    CsvDataModule(str(directory), targets="y", stream=True, val_fraction=0, batch_size=batch_size).setup("fit")
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000_000)
    parser.add_argument("--features", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=8192)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as workdir:
        work = Path(workdir)
        table, tiny = work / "table", work / "tiny"
        start = time.perf_counter()
        write_table(table, args.rows, args.features)
        written = time.perf_counter() - start
        write_table(tiny, TINY_ROWS, args.features)
        size_mib = sum(file.stat().st_size for file in table.iterdir()) / 2**20

        in_memory = template(settings(table, False, args.batch_size, args.device), work / "in_memory").epochs_seconds
        streamed = template(settings(table, True, args.batch_size, args.device), work / "streamed").epochs_seconds
        survey = survey_seconds(table, args.batch_size)
        command = settings(table, True, args.batch_size, args.device)
        _, streamed_peak = run_train_script(*command, "~logger", f"hydra.run.dir={work / 'peak'}")
        _, tiny_peak = run_train_script(
            *settings(tiny, True, args.batch_size, args.device), "~logger", f"hydra.run.dir={work / 'tiny_peak'}"
        )

    rows = args.rows
    files = -(-rows // FILE_ROWS)
    lines = [
        f"Streaming, {rows:,} x {args.features} rows ({size_mib:,.0f} MiB of Parquet in {files} files, written in "
        f"{written:.1f} s), batch {args.batch_size}, one epoch, {args.device}",
        f"{'':>22}{'seconds':>10}{'rows/s':>14}",
        *(
            f"{name:>22}{seconds:>10.4g}{rows / seconds:>14,.0f}"
            for name, seconds in (("in memory (baseline)", in_memory), ("streamed", streamed), ("survey", survey))
        ),
        f"streamed / in-memory throughput: {in_memory / streamed:.2f}",
        f"survey (normalization + least-squares pass) / one streamed epoch: {survey / streamed:.2f}",
        f"peak RSS of scripts/train.py streaming: {streamed_peak:,.0f} MiB = {tiny_peak:,.0f} MiB (the same on "
        f"{TINY_ROWS:,} rows) + {streamed_peak - tiny_peak:,.0f} MiB",
    ]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
