"""One table for a whole sweep: a row per job, best first, as summary.csv and on the console.

Light on purpose (no torch): Hydra loads it for every command, `--help` included.
"""

import json
import logging
import math
import re
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from linreg.runtime import write_csv_rows

log = logging.getLogger(__name__)
COLUMNS = (
    "job",
    "status",
    "objective",
    "objective_sd",
    "folds",
    "train/loss",
    "val/loss",
    "val/r2",
    "converged",
    "coefficient_gap",
    "epochs",
    "seconds",
    "overrides",
)


def job_row(job_dir: Path) -> dict[str, Any]:
    """What one job of the sweep left in its directory."""
    status_file = job_dir / "status.json"
    record = json.loads(status_file.read_text()) if status_file.is_file() else {"status": "failed"}
    overrides_file = job_dir / ".hydra" / "overrides.yaml"
    overrides = OmegaConf.load(overrides_file) if overrides_file.is_file() else []
    metrics = record.get("metrics") or {}
    return {
        "job": job_number(job_dir),
        "status": record["status"],
        "objective": metrics.get(record.get("optimized_metric") or "", math.nan),
        # With cv.folds: the metrics are the folds' means; their standard deviation, and how many folds.
        "objective_sd": (record.get("metrics_sd") or {}).get(record.get("optimized_metric") or "", math.nan),
        "folds": len(record.get("folds") or []) or None,
        "train/loss": metrics.get("train/loss", math.nan),
        "val/loss": metrics.get("val/loss", math.nan),
        "val/r2": metrics.get("val/r2", math.nan),
        "converged": record.get("converged"),
        "coefficient_gap": math.nan if record.get("coefficient_gap") is None else record["coefficient_gap"],
        "epochs": record.get("epochs"),
        "seconds": record.get("seconds"),
        "overrides": " ".join(str(o) for o in overrides),
    }


def job_number(path: Path) -> int | None:
    """The job number of a sweep job's folder (`3` or `3_optimizer=adam`, see linreg.job_dirname); None for others."""
    number = re.match(r"(\d+)(_|$)", path.name)
    return int(number.group(1)) if number and path.is_dir() else None


def ranked_jobs(sweep_dir: Path) -> list[tuple[Path, dict[str, Any]]]:
    """The sweep's job folders and their rows, best optimized metric first (jobs that diverged or failed last)."""
    jobs = sorted((p for p in sweep_dir.iterdir() if job_number(p) is not None), key=job_number)
    ranked = [(job, job_row(job)) for job in jobs]
    ranked.sort(key=lambda pair: (not is_scored(pair[1]), pair[1]["objective"]))
    return ranked


def is_scored(row: dict[str, Any]) -> bool:
    """A job that ended with a number for the metric the sweep minimises."""
    return row["status"] == "ok" and not math.isnan(row["objective"])


def summarize_sweep(sweep_dir: Path) -> list[dict[str, Any]]:
    """The sweep's jobs, best first, as rows; writes summary.csv."""
    rows = [row for _, row in ranked_jobs(sweep_dir)]
    write_csv_rows(sweep_dir / "summary.csv", COLUMNS, rows)
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    def cell(value: Any) -> str:
        if isinstance(value, float):
            return "-" if math.isnan(value) else f"{value:.6g}"
        return "-" if value is None else str(value)

    cells = [[cell(row[column]) for column in COLUMNS] for row in rows]
    widths = [max([len(column), *(len(line[i]) for line in cells)]) for i, column in enumerate(COLUMNS)]
    lines = ["  ".join(column.ljust(width) for column, width in zip(COLUMNS, widths, strict=True))]
    lines += ["  ".join(value.ljust(width) for value, width in zip(line, widths, strict=True)) for line in cells]
    return "\n".join(lines)


def name_jobs_by_what_varies(config: DictConfig) -> None:
    """Leave the command line's fixed settings (`data=crops` in `-m data=crops optimizer=sgd,adam`) out of the
    job directories' names, so they say what tells the jobs apart: `1_optimizer=adam`.

    Hydra composes each job's config again from the multirun's with its hydra overrides (Hydra's
    `load_sweep_config`): one more for `hydra.job.config.override_dirname.exclude_keys` reaches every job,
    also those of other processes (joblib, submitit). An Optuna search's fixed settings are all of the
    command line's; its trials are named by the values it chose.
    """
    task = OverridesParser.create().parse_overrides(list(config.hydra.overrides.task))
    fixed = sorted({override.key_or_group for override in task if not override.is_sweep_override()})
    if not fixed:
        return
    excluded = [*config.hydra.job.config.override_dirname.exclude_keys, *fixed]
    with read_write(config), open_dict(config):
        config.hydra.overrides.hydra.append(f"hydra.job.config.override_dirname.exclude_keys=[{','.join(excluded)}]")


class SweepSummary(Callback):
    """Hydra callback: the sweep's overrides when a multirun starts; at its end, summary.csv in the sweep
    directory and the table."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        name_jobs_by_what_varies(config)
        if config.get("print_config", "overrides") == "overrides":
            overrides = " ".join(config.hydra.overrides.task) or "none"
            log.info(f"Sweep of {overrides} in {config.hydra.sweep.dir} [each job's full config: config_tree.txt]")

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        if sweep_dir.is_dir():
            rows = summarize_sweep(sweep_dir)
            log.info(f"Sweep summary ({sweep_dir / 'summary.csv'}):\n{format_table(rows)}")
