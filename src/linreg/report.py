"""The end-of-run summary a person reads: metrics, the fitted equation in original units, where things are."""

import io
import math
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from rich.console import Console
from rich.syntax import Syntax
from rich.tree import Tree
from torch import Tensor

from linreg.least_squares import intercept_name
from linreg.runtime import write_atomically
from linreg.statistics import FitStatistics


def format_number(value: float) -> str:
    return f"{value:#.4g}".rstrip(".")


def format_p(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.2g}"


def aligned_row(cells: Sequence[str], widths: Sequence[int]) -> str:
    """The first cell left-aligned (a name), the rest right-aligned (numbers)."""
    padded = (c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True)))
    return "    " + "  ".join(padded)


def format_statistics(statistics: FitStatistics, max_rows: int = 30) -> str:
    """A compact table of the least-squares statistics per target (coefficients.csv and statistics.json: all)."""
    lines = [f"Least squares on the training split ({statistics.ci:.0%} confidence intervals):"]
    for target, fit in statistics.targets.items():
        lines.append(
            f"  {target}: R² {format_number(fit.r2)} (adjusted {format_number(fit.adj_r2)}), "
            f"F {format_number(fit.f_statistic)} (p {format_p(fit.f_p_value)}), "
            f"AIC {format_number(fit.aic)}, BIC {format_number(fit.bic)}"
        )
        lines.append(
            "    residuals: "
            f"Durbin–Watson {format_number(fit.durbin_watson)}, Jarque–Bera {format_number(fit.jarque_bera)} "
            f"(p {format_p(fit.jarque_bera_p_value)}), skew {format_number(fit.skew)}, "
            f"kurtosis {format_number(fit.kurtosis)}"
        )
        rows = [row for row in statistics.coefficients if row["target"] == target]
        columns = [column for column in rows[0] if column != "target"]  # (with `trained` for a linear net)
        cells = [
            [row["feature"], *(format_p(row[c]) if c == "p_value" else format_number(row[c]) for c in columns[1:])]
            for row in rows[:max_rows]
        ]
        widths = [max(len(c), *(len(line[i]) for line in cells)) for i, c in enumerate(columns)]
        lines += [aligned_row(line, widths) for line in [list(columns), *cells]]
        if len(rows) > max_rows:
            lines.append(f"    … {len(rows) - max_rows} more in coefficients.csv")
    lines.append(
        f"  condition number {format_number(statistics.condition_number)} "
        f"(standardized {format_number(statistics.condition_number_standardized)})"
    )
    return "\n".join(lines)


def format_equation(
    weight: Tensor, bias: Tensor, feature_names: Sequence[str], target_names: Sequence[str], intercept: bool = True
) -> str:
    """`t_c = 0.5368·t_u − 17.30` per target for a few features; a weight table for many. Without an `intercept`
    (a line through the origin) the bias is left out."""
    if len(feature_names) > 4:
        return format_weight_table(weight, bias, feature_names, target_names, intercept)
    lines = []
    for target, row, constant in zip(target_names, weight.tolist(), bias.tolist(), strict=True):
        terms = [(w, f"·{name}") for w, name in zip(row, feature_names, strict=True)] + [(constant, "")] * intercept
        terms = [(w, name) for w, name in terms if not math.isnan(w)]  # (an aliased feature has no coefficient)
        text = "".join(f"{' − ' if w < 0 else ' + '}{format_number(abs(w))}{name}" for w, name in terms)
        lines.append(f"{target} = " + ("−" + text[3:] if text.startswith(" − ") else text[3:]))
    return "\n".join(lines)


def format_weight_table(
    weight: Tensor, bias: Tensor, feature_names: Sequence[str], target_names: Sequence[str], intercept: bool = True
) -> str:
    """One row per feature (and the bias), one column per target."""
    bias_name = intercept_name(feature_names)
    width = max(len(name) for name in [*feature_names, bias_name])
    header = " " * width + "".join(f"{name:>14}" for name in target_names)
    rows = [
        f"{name:<{width}}" + "".join(f"{'aliased' if math.isnan(w) else format_number(w):>14}" for w in column)
        for name, column in zip(feature_names, weight.T.tolist(), strict=True)
    ]
    if intercept:
        rows.append(f"{bias_name:<{width}}" + "".join(f"{format_number(b):>14}" for b in bias.tolist()))
    return "\n".join([header, *rows])


def format_summary(
    metrics: Mapping[str, float],
    equations: Mapping[str, str],
    statistics: str,
    verdict: str,
    output_dir: Path,
    checkpoints: Sequence[Path],
    tensorboard: bool = True,
) -> str:
    """Metrics, each labelled equation (trained, least squares, …), the verdict, then where the run's files are
    (and the command that shows them in TensorBoard, when the run wrote TensorBoard events)."""
    width = max(len(label) for label in equations) + 2
    lines = ["", "Final metrics:"]
    names = max((len(name) for name in metrics), default=0)
    lines += [f"  {name:<{names}}  {format_number(value)}" for name, value in sorted(metrics.items())]
    lines += ["Fitted model (original units):"]
    for label, equation in equations.items():
        first, *rest = equation.splitlines()
        lines += [f"  {label + ':':<{width}}{first}", *(f"  {'':<{width}}{line}" for line in rest)]
    lines += [statistics, f"Convergence:   {verdict}", f"Run directory: {output_dir}"]
    lines += [f"Checkpoint:    {path}" for path in checkpoints]
    if tensorboard:
        lines += [f"TensorBoard:   tensorboard --logdir {tensorboard_logdir(output_dir)}"]
    return "\n".join(lines)


def tensorboard_logdir(output_dir: Path) -> str:
    """`logs` for a run under ./logs (every run there, to compare); the run's own directory for one elsewhere."""
    logs = Path("logs").resolve()
    if output_dir.resolve().is_relative_to(logs):
        return "logs"
    return shlex.quote(str(output_dir))


GROUP_ORDER = ("data", "model", "optimizer", "scheduler", "trainer", "logger", "callbacks")


def config_tree(cfg: DictConfig) -> Tree:
    """The composed config as a tree, a branch per group, in the order a reader looks for them."""
    tree = Tree("config", guide_style="dim")
    for key in [*GROUP_ORDER, *(k for k in cfg if k not in GROUP_ORDER)]:
        if key not in cfg:
            continue
        node = cfg[key]
        text = OmegaConf.to_yaml(node, resolve=True) if isinstance(node, DictConfig) else str(node)
        tree.add(f"[bold]{key}[/bold]").add(
            Syntax(text.rstrip(), "yaml", theme="ansi_dark", background_color="default")
        )
    return tree


def show_config(cfg: DictConfig, path: Path, shown: str, overrides: Sequence[str] | None) -> None:
    """Keep the config tree as plain text in the run; print it whole (`shown` full), or only the `overrides` the
    config was composed with (`shown` overrides; None: not known, nothing printed), or nothing (none)."""
    tree = config_tree(cfg)
    recorder = Console(record=True, file=io.StringIO(), width=100)
    recorder.print(tree)
    write_atomically(path, lambda file: file.write(recorder.export_text()))
    if shown == "full":
        Console().print(tree)
    elif shown == "overrides" and overrides is not None:
        print(format_overrides(overrides, path))


def format_overrides(overrides: Sequence[str], saved: Path) -> str:
    """One line for the console: what the command line changed, and where the whole config is."""
    changed = " ".join(overrides) if overrides else "none (configs/train.yaml as it is)"
    return f"Overrides: {changed}  [full config: {saved}; print_config=full prints it]"
