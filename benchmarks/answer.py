"""Time to a least-squares answer with statistics: the template's train.py against what a user would run instead.

python benchmarks/answer.py [--rows 1000000 10000000] [--features 16] [--formats parquet csv] [--repeats 3]

One generated table per size (16 normal features, y linear in them plus noise) is written as Parquet and as
CSV. On each, whole processes as a user starts them, each measured for wall time and peak resident memory:

- template: `scripts/train.py data=csv data.path=<file> 'data.targets=[y]'`, the default run (L-BFGS to least
  squares, the statistics, the summary, TensorBoard logs, checkpoints and pictures);
- statsmodels: pandas reads the file, `sm.OLS(y, add_constant(X)).fit().summary()` (the baseline of the ratios);
- scikit-learn: pandas reads the file, `LinearRegression().fit(X, y)` (coefficients only, no statistics);
- pyarrow read: pyarrow reads the file and nothing else, the floor of any reader.

Then the default run (`scripts/train.py` on the thermometer table) against `python -c "import lightning"`, and
the template's memory above its base, its peak on a 1,000-row table. Times are medians of `--repeats` runs.
It prints its table and nothing else.
"""

import argparse
import itertools
import statistics
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from speed import TRAIN_SCRIPT, measured_process

READ = (
    "import sys, pandas as pd\n"
    "table = (pd.read_parquet if sys.argv[1].endswith('.parquet') else pd.read_csv)(sys.argv[1])\n"
)
PROGRAMS = {
    "statsmodels": READ + "import statsmodels.api as sm\n"
    "print(sm.OLS(table['y'], sm.add_constant(table.drop(columns='y'))).fit().summary())\n",
    "scikit-learn": READ + "from sklearn.linear_model import LinearRegression\n"
    "model = LinearRegression().fit(table.drop(columns='y'), table['y'])\nprint(model.intercept_, model.coef_)\n",
    "pyarrow read": "import sys, pyarrow.csv, pyarrow.parquet\n"
    "read = pyarrow.parquet.read_table if sys.argv[1].endswith('.parquet') else pyarrow.csv.read_csv\n"
    "print(read(sys.argv[1]).shape)\n",
}
BASE_ROWS = 1000


def write_table(rows: int, features: int, folder: Path, formats: list[str]) -> dict[str, Path]:
    """The table as each of `formats`, written a million rows at a time (a 10M-row CSV is 3 GB of text)."""
    generator = np.random.default_rng(0)
    weights = generator.standard_normal(features)
    names = [f"x{i}" for i in range(features)] + ["y"]
    paths = {kind: folder / f"table_{rows}.{kind}" for kind in formats}
    schema = pa.schema([(name, pa.float64()) for name in names])
    writers = {
        kind: pq.ParquetWriter(path, schema) if kind == "parquet" else pa_csv.CSVWriter(path, schema)
        for kind, path in paths.items()
    }
    for start in range(0, rows, 1_000_000):
        x = generator.standard_normal((min(1_000_000, rows - start), features))
        y = x @ weights + 0.5 * generator.standard_normal(len(x))
        chunk = pa.table(dict(zip(names, [*x.T, y], strict=True)), schema=schema)
        for writer in writers.values():
            writer.write_table(chunk)
    for writer in writers.values():
        writer.close()
    return paths


def template_command(path: Path, run_dir: Path) -> list[str]:
    return [
        sys.executable,
        str(TRAIN_SCRIPT),
        "data=csv",
        f"data.path={path}",
        "data.targets=[y]",
        f"hydra.run.dir={run_dir}",
    ]


def median_run(command_of_run: Callable[[int], list[str]], repeats: int) -> tuple[float, float]:
    """Median wall seconds and the largest peak MiB of `repeats` processes; `command_of_run(i)` is the i-th's."""
    measured = [measured_process(command_of_run(i)) for i in range(repeats)]
    return statistics.median(seconds for seconds, _ in measured), max(peak for _, peak in measured)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--features", type=int, default=16)
    parser.add_argument("--formats", nargs="+", default=["parquet", "csv"], choices=["parquet", "csv"])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    lines = [
        f"Time to a least-squares answer, {args.features} features, whole processes, median of {args.repeats}",
        f"{'rows':>11} {'file':<8}{'program':<14}{'seconds':>9}{'peak MiB':>10}{'vs statsmodels':>16}",
    ]
    with tempfile.TemporaryDirectory() as workdir:
        work = Path(workdir)
        runs = itertools.count()  # (each template run gets a directory of its own)

        def template(path: Path) -> Callable[[int], list[str]]:
            return lambda _: template_command(path, work / f"run{next(runs)}")

        base_path = write_table(BASE_ROWS, args.features, work, ["parquet"])["parquet"]
        _, base = median_run(template(base_path), 1)
        peaks = {}
        for rows in args.rows:
            paths = write_table(rows, args.features, work, args.formats)
            for kind, path in paths.items():
                programs = {"template": template(path)}
                programs |= {
                    name: lambda _, code=code, path=path: [sys.executable, "-c", code, str(path)]
                    for name, code in PROGRAMS.items()
                }
                measured = {name: median_run(command, args.repeats) for name, command in programs.items()}
                peaks[rows, kind] = measured["template"][1]
                reference = measured["statsmodels"][0]
                for name, (seconds, peak) in measured.items():
                    lines.append(
                        f"{rows:>11,} {kind:<8}{name:<14}{seconds:>9.2f}{peak:>10,.0f}{seconds / reference:>16.2f}"
                    )
                path.unlink()
        default, _ = median_run(
            lambda i: [sys.executable, str(TRAIN_SCRIPT), f"hydra.run.dir={work / f'default{i}'}"], args.repeats
        )
        lightning, _ = median_run(lambda _: [sys.executable, "-c", "import lightning"], args.repeats)
    lines += [
        "",
        f"{'template memory':<28}{'peak MiB':>10}{'above base':>12}{'float32 table':>15}",
        f"{f'base ({BASE_ROWS:,} rows)':<28}{base:>10,.0f}",
    ]
    for (rows, kind), peak in peaks.items():
        table_mib = rows * (args.features + 1) * 4 / 2**20
        lines.append(f"{f'{rows:,} rows, {kind}':<28}{peak:>10,.0f}{peak - base:>12,.0f}{table_mib:>15,.0f}")
    lines += [
        "",
        f"default run (make train): {default:.2f} s; python -c 'import lightning': {lightning:.2f} s; "
        f"ratio {default / lightning:.2f}",
    ]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
