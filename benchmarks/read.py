"""Reading a table: the template's file-to-tensors path against pyarrow's own CSV reader, and its peak memory.

python benchmarks/read.py [--rows 2000000] [--columns 20]

One numeric table (the last column the target) is written once as CSV and as Parquet. In one process:

- pyarrow.csv.read_csv: the baseline, Arrow's multi-threaded reader with its own types (float64);
- template CSV: `CsvDataModule.read_table`, from the file to the float32 feature and target tensors
  (delimiter detection, column plan, encoding included);
- template Parquet: the same from the Parquet copy.

Peak memory is measured in a fresh process (its peak resident size minus its size before reading) and
compared with the float32 table it produces. It prints its table and nothing else.
"""

import argparse
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow.csv as pa_csv
from answer import write_table

from linreg.data import CsvDataModule

REPEATS = 3


def template_read(path: Path) -> None:
    CsvDataModule(path=str(path), targets=["y"]).read_table()


def best_seconds(function: Callable[[Path], object], path: Path) -> float:
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        function(path)
        times.append(time.perf_counter() - start)
    return min(times)


def peak_read_bytes(path: Path) -> int:
    """Peak resident memory that the template's read adds, measured in a new process."""
    script = (
        "from linreg.data import CsvDataModule\n"
        "def kib(key):\n"
        "    return next(int(line.split()[1]) for line in open('/proc/self/status') if line.startswith(key))\n"
        "before = kib('VmRSS:')\n"
        f"CsvDataModule(path={str(path)!r}, targets=['y']).read_table()\n"
        "print((kib('VmHWM:') - before) * 1024)\n"  # (VmHWM, unlike ru_maxrss, starts afresh in a new program)
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return int(result.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--columns", type=int, default=20, help="columns in all, the target included")
    arguments = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        paths = write_table(arguments.rows, arguments.columns - 1, Path(folder), ["csv", "parquet"])
        csv_path, parquet_path = paths["csv"], paths["parquet"]
        baseline = best_seconds(pa_csv.read_csv, csv_path)
        rows = [
            ("pyarrow.csv.read_csv", baseline),
            ("template, CSV to tensors", best_seconds(template_read, csv_path)),
            ("template, Parquet to tensors", best_seconds(template_read, parquet_path)),
        ]
        peak = peak_read_bytes(csv_path)
        csv_mb, parquet_mb = csv_path.stat().st_size / 1e6, parquet_path.stat().st_size / 1e6
    table_mb = arguments.rows * arguments.columns * 4 / 1e6
    print(
        f"Reading {arguments.rows:,} x {arguments.columns} numbers "
        f"(CSV {csv_mb:,.0f} MB, Parquet {parquet_mb:,.0f} MB; best of {REPEATS})"
    )
    print(f"{'reader':<30}{'seconds':>10}{'vs pyarrow.csv':>16}")
    for name, seconds in rows:
        print(f"{name:<30}{seconds:>10.3f}{seconds / baseline:>16.3g}")
    print(
        f"peak memory of the template CSV read: {peak / 1e6:,.0f} MB = {peak / 1e6 / table_mb:.2f} x the float32 "
        f"table ({table_mb:,.0f} MB)"
    )


if __name__ == "__main__":
    main()
