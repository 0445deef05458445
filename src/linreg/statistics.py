"""What an analyst reads off a least-squares fit, per target, in original units: the statistics of statsmodels'
`OLS(y, add_constant(X)).fit().summary()`, from the training split.

Everything comes from the triangular factor R of the training rows [1, x, y] (least_squares.NormalEquations: a
QR decomposition gathered a chunk at a time in float64), never from normal equations, which square the columns'
condition number. The columns are walked in order and one that is a linear combination of those before it is
named and left out (ALIAS_TOLERANCE), as R's `lm` does; the others are solved by back substitution. Where the
rows as written are at hand (Table.as_written: small tables keep them in float64), one step of iterative
refinement follows, its residuals summed in extended precision: the estimates then carry the digits the data
carries (the NIST StRD linear least-squares suite is the yardstick, docs/statistics.md). The residual diagnostics
take a second pass in file order with the solution known. Neither pass needs the table in memory at once.
"""

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from scipy import stats
from torch import Tensor

from linreg.data import Table
from linreg.least_squares import NormalEquations, Rows, intercept_name, triangular_factor
from linreg.normalize import CHUNK_ROWS
from linreg.runtime import write_csv_rows, write_json

# Collinearity worth a warning: a feature this much better explained by the others than by chance.
VIF_WARNING = 10.0
# A feature whose part outside the span of the columns before it (the intercept, then the features in order) is at
# most this fraction of its length is aliased: a linear combination of them, left out of the fit. R's `lm` uses
# 1e-7, which also leaves out the tenth power of NIST's Filip, a column NIST certifies as identified.
ALIAS_TOLERANCE = 1e-9
# A target whose least-squares residuals are at most this fraction of its spread about its mean is fitted exactly:
# what remains is the rounding of float64 arithmetic, and the residual variance is 0.
EXACT_FIT = 1e-13


@dataclass
class CenteredSums:
    """The training split's sums about the column means, in original units (float64); for a model without an
    intercept, about 0 (the means 0), as R and NIST take its R²."""

    rows: int
    feature_means: Tensor  # features
    target_means: Tensor  # targets
    scatter: Tensor  # features²: Σ (x − x̄)(x − x̄)ᵀ
    cross: Tensor  # features × targets: Σ (x − x̄)(y − ȳ)ᵀ
    target_scatter: Tensor  # targets: Σ (y − ȳ)²
    intercept: bool = True

    @classmethod
    def of(cls, design: Tensor, rows: int, features: int, intercept: bool = True) -> "CenteredSums":
        """From R of [1, x, y]: its first row holds the sums over ±√rows, the rest is the triangle of the centred
        columns (so Σ (y − ȳ)² is a sum of squares, without cancellation). Without an `intercept`, R of [x, y]."""
        centred = design[1:, 1:] if intercept else design
        products = centred.T @ centred
        means = design[0, 1:] / design[0, 0] if intercept else torch.zeros(len(design), dtype=torch.float64)
        return cls(
            rows=rows,
            feature_means=means[:features],
            target_means=means[features:],
            scatter=products[:features, :features],
            cross=products[:features, features:],
            target_scatter=centred[:, features:].square().sum(0),
            intercept=intercept,
        )


@dataclass
class Identified:
    """The design's columns that least squares can tell apart, and what each of the others is a combination of."""

    kept: list[int]  # design columns (with an intercept, 0 is it and j is feature j − 1; else j is feature j)
    triangle: Tensor  # R of [the kept columns, y]
    aliased: dict[int, str] = field(default_factory=dict)  # feature index → why it is left out


def identify(design: Tensor, feature_names: list[str], intercept: bool = True) -> Identified:
    """Walk the columns in order; one whose own part (|R_jj|) is within ALIAS_TOLERANCE of nothing, against its
    length, is a combination of those kept before it: named, and removed from the triangle."""
    names = ["the intercept", *feature_names] if intercept else list(feature_names)
    kept, aliased, triangle, position = [], {}, design, 0
    for column in range(len(names)):
        length = float(triangle[: position + 1, position].norm())
        if abs(float(triangle[position, position])) > ALIAS_TOLERANCE * length:
            kept.append(column)
            position += 1
            continue
        if length == 0:
            aliased[column - intercept] = "0 in every training row"
        else:
            parts = torch.linalg.solve_triangular(
                triangle[:position, :position], triangle[:position, position : position + 1], upper=True
            )[:, 0]
            lengths = triangle[:position, :position].norm(dim=0)
            terms = [(kept[k], float(parts[k])) for k in range(position) if abs(parts[k]) * lengths[k] > 1e-6 * length]
            aliased[column - intercept] = combination(names, terms, intercept)
        triangle = triangular_factor(torch.cat([triangle[:, :position], triangle[:, position + 1 :]], dim=1))
    return Identified(kept, triangle, aliased)


def combination(names: list[str], terms: list[tuple[int, float]], intercept: bool) -> str:
    """How an aliased column is made of others, in words: a copy, a multiple, or a linear combination."""
    if len(terms) == 1 and intercept and terms[0][0] == 0:
        return "constant in the training rows"
    if len(terms) == 1:
        column, factor = terms[0]
        copy = math.isclose(factor, 1.0, rel_tol=1e-9)  # (the back substitution's rounding of an exact copy)
        return f"equal to {names[column]}" if copy else f"{factor:.6g} × {names[column]} (an exact multiple)"
    return f"a linear combination of {', '.join(names[column] for column, _ in terms)}"


@dataclass
class Solution:
    """The least-squares fit of the training rows, with what its uncertainty needs: computed once a run, for the
    statistics and for the prediction intervals the checkpoints keep."""

    sums: CenteredSums
    weight: Tensor  # features × targets, original units (0 for an aliased feature)
    bias: Tensor  # targets
    inverse_scatter: Tensor  # the inverse scatter of the identified features (0 in an aliased one's row, column)
    bias_factor: float  # Var(bias) / σ²: 1/n + x̄ᵀ S⁻¹ x̄
    rank: int  # identified features: the degrees of freedom of the model besides the intercept
    residual_squares: Tensor  # targets: Σ residual² (0 where the fit is exact)
    aliased: dict[str, str] = field(default_factory=dict)  # feature → what it is a linear combination of
    intercept: bool = True  # False: a model through the origin (model.net.bias=false)

    @classmethod
    def of(cls, equations: NormalEquations, rows: Rows, intercept: bool = True) -> "Solution":
        """Solve the raw training equations by back substitution on the identified columns; refine once against
        `rows` where they are the rows as written."""
        features = len(equations.shift_x)
        design = equations.unshifted(intercept)
        identified = identify(design, rows.feature_names, intercept)
        kept, triangle = identified.kept, identified.triangle
        k = len(kept)
        coefficients = torch.linalg.solve_triangular(triangle[:k, :k], triangle[:k, k:], upper=True)
        residual_squares = triangle[k:, k:].square().sum(0)
        if getattr(rows, "as_written", None) is not None:
            coefficients, residual_squares = refined(coefficients, triangle[:k, :k], kept, rows, intercept)
        sums = CenteredSums.of(design, equations.rows, features, intercept)
        residual_squares = torch.where(
            residual_squares.sqrt() <= EXACT_FIT * sums.target_scatter.sqrt(), 0.0, residual_squares
        )
        weight = torch.zeros(features, coefficients.shape[1], dtype=torch.float64)
        bias = coefficients[0] if intercept else torch.zeros(coefficients.shape[1], dtype=torch.float64)
        feature_rows = list(range(int(intercept), k))
        weight[[kept[p] - intercept for p in feature_rows]] = coefficients[feature_rows]
        # (AᵀA)⁻¹ = R⁻¹R⁻ᵀ of the identified columns; its feature block is the inverse of the centred scatter.
        inverse_r = torch.linalg.solve_triangular(triangle[:k, :k], torch.eye(k, dtype=torch.float64), upper=True)
        unscaled = inverse_r @ inverse_r.T
        inverse_scatter = torch.zeros(features, features, dtype=torch.float64)
        where = torch.tensor([kept[p] - intercept for p in feature_rows], dtype=torch.long)
        inverse_scatter[where[:, None], where[None, :]] = unscaled[feature_rows][:, feature_rows]
        names = rows.feature_names
        aliased = {names[index]: why for index, why in identified.aliased.items()}
        bias_factor = float(unscaled[0, 0]) if intercept else math.nan
        rank = len(feature_rows)
        return cls(sums, weight, bias, inverse_scatter, bias_factor, rank, residual_squares, aliased, intercept)

    @property
    def df_resid(self) -> int:
        return self.sums.rows - self.rank - self.intercept

    def coefficient_scale(self, names: list[str]) -> tuple[Tensor, Tensor]:
        """What each coefficient's distance from least squares is measured against (targets × features, and per
        target for the bias): the larger of its size and its standard error, so that a coefficient near 0 is
        judged in standard errors; ∞ for an aliased one (least squares does not pin it down)."""
        sigma = self.residual_variance.nan_to_num(0.0).sqrt()  # (no residual degrees of freedom: sizes alone)
        errors = sigma[:, None] * self.inverse_scatter.diagonal().clamp_min(0).sqrt()[None, :]
        weight = torch.maximum(self.weight.T.abs(), errors)
        weight[:, [name in self.aliased for name in names]] = math.inf
        if not self.intercept:  # (no bias to judge)
            return weight, torch.full_like(self.bias, math.inf)
        return weight, torch.maximum(self.bias.abs(), sigma * math.sqrt(max(self.bias_factor, 0.0)))

    @property
    def residual_variance(self) -> Tensor:
        """σ² per target (NaN without residual degrees of freedom)."""
        if self.df_resid > 0:
            return self.residual_squares / self.df_resid
        return torch.full_like(self.residual_squares, math.nan)


def refined(
    coefficients: Tensor, triangle: Tensor, kept: list[int], rows: Rows, intercept: bool
) -> tuple[Tensor, Tensor]:
    """One step of iterative refinement (corrected semi-normal equations): the residuals r of the rows as written
    and Aᵀr summed in extended precision (numpy's longdouble), then δ = R⁻¹R⁻ᵀAᵀr, and Σ (r − Aδ)² = Σ r² − δᵀAᵀr.
    The triangle's rounding then costs digits only once, not in the answer too."""
    extended = np.longdouble
    solution = coefficients.numpy().astype(extended)
    gradient = np.zeros(solution.shape, dtype=extended)
    squares = np.zeros(solution.shape[1], dtype=extended)
    features = [column - intercept for column in kept[int(intercept) :]]
    for x, y in rows.chunks(CHUNK_ROWS):
        columns = x.numpy()[:, features].astype(extended)
        if intercept:
            columns = np.concatenate([np.ones((len(columns), 1), dtype=extended), columns], axis=1)
        residuals = y.numpy().astype(extended) - columns @ solution
        gradient += columns.T @ residuals
        squares += (residuals * residuals).sum(0)
    step = torch.from_numpy(gradient.astype(np.float64))
    step = torch.linalg.solve_triangular(
        triangle, torch.linalg.solve_triangular(triangle.T, step, upper=False), upper=True
    )
    improved = solution + step.numpy().astype(extended)
    remaining = squares - (step.numpy().astype(extended) * gradient).sum(0)
    return torch.from_numpy(improved.astype(np.float64)), torch.from_numpy(np.maximum(remaining, 0).astype(np.float64))


@dataclass
class TargetStatistics:
    """statistics.json, one per target: the fit as a whole."""

    rows: int
    df_model: int
    df_resid: int
    r2: float
    adj_r2: float
    f_statistic: float
    f_p_value: float
    log_likelihood: float
    aic: float
    bic: float
    residual_std: float
    durbin_watson: float
    jarque_bera: float
    jarque_bera_p_value: float
    skew: float
    kurtosis: float


@dataclass
class FitStatistics:
    """Everything about the least-squares fit of one training split that the run writes and prints."""

    feature_names: list[str]
    target_names: list[str]
    ci: float
    coefficients: list[dict]  # rows of coefficients.csv
    targets: dict[str, TargetStatistics]
    condition_number: float  # statsmodels' own: of [1, X] in original units (scale-dependent)
    condition_number_standardized: float  # of the features' correlation matrix: collinearity alone
    vif: dict[str, float]  # variance inflation factor per feature
    aliased: dict[str, str] = field(default_factory=dict)  # feature → the columns it is a combination of

    def collinear(self) -> list[str]:
        """Features nearly predictable from the others (aliased ones, exactly predictable, are named apart)."""
        return [name for name, value in self.vif.items() if value >= VIF_WARNING and name not in self.aliased]

    def equation(self) -> tuple[Tensor, Tensor]:
        """The estimates of coefficients.csv as weights (targets × features; NaN where aliased) and biases."""
        estimates = {(row["target"], row["feature"]): row["estimate"] for row in self.coefficients}
        intercept = intercept_name(self.feature_names)
        weight = [[estimates[target, name] for name in self.feature_names] for target in self.target_names]
        bias = [estimates.get((target, intercept), 0.0) for target in self.target_names]
        return torch.tensor(weight, dtype=torch.float64), torch.tensor(bias, dtype=torch.float64)

    def save(self, directory: Path) -> None:
        """coefficients.csv and statistics.json in the run directory (an empty cell or null: not defined)."""
        record = {
            "ci": self.ci,
            "condition_number": self.condition_number,
            "condition_number_standardized": self.condition_number_standardized,
            "vif": self.vif,
            "aliased": self.aliased,
            "targets": {name: asdict(value) for name, value in self.targets.items()},
        }
        write_json(directory / "statistics.json", finite(record))
        columns = [*self.coefficients[0]] if self.coefficients else []
        write_csv_rows(directory / "coefficients.csv", columns, finite(self.coefficients))


def finite(value):
    """`value` with NaN and infinities as None: JSON has no such numbers, and a CSV cell is then empty."""
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [finite(item) for item in value]
    return None if isinstance(value, float) and not math.isfinite(value) else value


def fit_statistics(
    solution: Solution, table: Table, trained: tuple[Tensor, Tensor] | None, ci: float = 0.95
) -> FitStatistics:
    """The statistics of the least-squares fit of `table` (the training split), beside the trained equation of a
    linear net (`trained`; None for any other net: no `trained` column)."""
    sums = solution.sums
    n, rank, df_resid, sigma2 = sums.rows, solution.rank, solution.df_resid, solution.residual_variance
    moments = residual_moments(table, solution)
    coefficients, per_target = [], {}
    intercept = [intercept_name(table.feature_names)] if solution.intercept else []  # (its row, if any)
    names = [*table.feature_names, *intercept]
    for j, target in enumerate(table.target_names):
        weights = solution.weight[:, j].tolist()
        estimates = [
            math.nan if name in solution.aliased else w for name, w in zip(table.feature_names, weights, strict=True)
        ]
        estimates += [float(solution.bias[j])] if intercept else []
        errors = coefficient_errors(solution, table.feature_names, float(sigma2[j]))
        for name, estimate, error in zip(names, estimates, errors, strict=True):
            coefficients.append({"target": target, "feature": name, **inference(estimate, error, df_resid, ci)})
        if trained is not None:
            values = [*trained[0][j].tolist(), *([float(trained[1][j])] if intercept else [])]
            for row, value in zip(coefficients[-len(names) :], values, strict=True):
                row["trained"] = value
        per_target[target] = fit_summary(
            n, rank, float(solution.residual_squares[j]), float(sums.target_scatter[j]), moments[j], solution.intercept
        )
    identified = torch.tensor([name not in solution.aliased for name in table.feature_names], dtype=torch.bool)
    standardized, vif = collinearity(sums, identified)
    return FitStatistics(
        feature_names=list(table.feature_names),
        target_names=list(table.target_names),
        ci=ci,
        coefficients=coefficients,
        targets=per_target,
        condition_number=raw_condition_number(sums),
        condition_number_standardized=standardized,
        vif=dict(zip(table.feature_names, vif, strict=True)),
        aliased=dict(solution.aliased),
    )


def coefficient_errors(solution: Solution, names: list[str], sigma2: float) -> list[float]:
    """Standard errors of the weights, then of the bias: σ²·(AᵀA)⁻¹ of the identified columns [1, x]. An aliased
    feature's weight is not identifiable (the columns it combines carry it): NaN, as R's NA."""
    errors = (sigma2 * solution.inverse_scatter.diagonal()).clamp_min(0).sqrt().tolist()
    errors = [math.nan if name in solution.aliased else error for name, error in zip(names, errors, strict=True)]
    return [*errors, math.sqrt(max(sigma2 * solution.bias_factor, 0.0))] if solution.intercept else errors


def inference(estimate: float, std_error: float, df_resid: int, ci: float) -> dict[str, float]:
    """t, its two-sided p-value and the confidence interval of one coefficient, as statsmodels gives them."""
    t = estimate / std_error if std_error > 0 else math.nan
    p_value = float(2 * stats.t.sf(abs(t), df_resid)) if df_resid > 0 and not math.isnan(t) else math.nan
    half = float(stats.t.ppf(0.5 + ci / 2, df_resid)) * std_error if df_resid > 0 else math.nan
    return {
        "estimate": estimate,
        "std_error": std_error,
        "t": t,
        "p_value": p_value,
        "ci_low": estimate - half,
        "ci_high": estimate + half,
    }


def fit_summary(
    n: int, rank: int, residual_squares: float, total_squares: float, moments: dict, intercept: bool = True
) -> TargetStatistics:
    """R², F and the Gaussian likelihood's criteria, as statsmodels defines them; without an `intercept` the
    squares are taken about 0 (R², F: uncentered, as R and NIST give them)."""
    df_model, df_resid = rank, n - rank - intercept
    r2 = 1 - residual_squares / total_squares if total_squares > 0 else math.nan
    adj_r2 = 1 - (n - intercept) / df_resid * (1 - r2) if df_resid > 0 else math.nan
    explained = total_squares - residual_squares
    if df_model > 0 and df_resid > 0 and residual_squares > 0:
        f_statistic = (explained / df_model) / (residual_squares / df_resid)
        f_p_value = float(stats.f.sf(f_statistic, df_model, df_resid))
    else:
        f_statistic = f_p_value = math.nan
    log_likelihood = (
        -n / 2 * (math.log(2 * math.pi) + math.log(residual_squares / n) + 1) if residual_squares > 0 else math.inf
    )
    parameters = df_model + intercept
    return TargetStatistics(
        rows=n,
        df_model=df_model,
        df_resid=df_resid,
        r2=r2,
        adj_r2=adj_r2,
        f_statistic=f_statistic,
        f_p_value=f_p_value,
        log_likelihood=log_likelihood,
        aic=-2 * log_likelihood + 2 * parameters,
        bic=-2 * log_likelihood + math.log(n) * parameters,
        residual_std=math.sqrt(residual_squares / df_resid) if df_resid > 0 else math.nan,
        **moments,
    )


def residual_moments(table: Table, solution: Solution, chunk_rows: int = CHUNK_ROWS) -> list[dict[str, float]]:
    """Durbin–Watson, Jarque–Bera, skew and kurtosis of each target's residuals, in one pass in file order
    (Durbin–Watson reads neighbouring rows: the split's own shuffled order would make it meaningless)."""
    n_targets = len(table.target_names)
    power_sums = torch.zeros(4, n_targets, dtype=torch.float64)  # Σ e, Σ e², Σ e³, Σ e⁴
    differences = torch.zeros(n_targets, dtype=torch.float64)  # Σ (e_t − e_{t−1})²
    previous = None
    for x, y in table.chunks(chunk_rows, file_order=True):
        residuals = y - (x @ solution.weight + solution.bias)
        for power in range(4):
            power_sums[power] += (residuals ** (power + 1)).sum(0)
        joined = residuals if previous is None else torch.cat([previous, residuals])
        differences += (joined.diff(dim=0) ** 2).sum(0)
        previous = residuals[-1:]
    return [moment_statistics(power_sums[:, j], float(differences[j]), len(table)) for j in range(n_targets)]


def moment_statistics(power_sums: Tensor, differences: float, n: int) -> dict[str, float]:
    """From Σ e, Σ e², Σ e³, Σ e⁴: the central moments, then the statistics statsmodels reports."""
    mean, m2_raw, m3_raw, m4_raw = (float(s) / n for s in power_sums)
    m2 = m2_raw - mean**2
    m3 = m3_raw - 3 * mean * m2_raw + 2 * mean**3
    m4 = m4_raw - 4 * mean * m3_raw + 6 * mean**2 * m2_raw - 3 * mean**4
    skew = m3 / m2**1.5 if m2 > 0 else math.nan
    kurtosis = m4 / m2**2 if m2 > 0 else math.nan
    jarque_bera = n / 6 * (skew**2 + (kurtosis - 3) ** 2 / 4)
    return {
        "durbin_watson": differences / float(power_sums[1]) if float(power_sums[1]) > 0 else math.nan,
        "jarque_bera": jarque_bera,
        "jarque_bera_p_value": float(stats.chi2.sf(jarque_bera, 2)),
        "skew": skew,
        "kurtosis": kurtosis,
    }


def raw_condition_number(sums: CenteredSums) -> float:
    """√(largest / smallest eigenvalue) of [1, X]ᵀ[1, X] in original units: statsmodels' condition number,
    which also grows with the columns' units and distance from zero."""
    n, mean = sums.rows, sums.feature_means
    if not sums.intercept:  # (of X alone)
        eigenvalues = torch.linalg.eigvalsh(sums.scatter)
        return math.sqrt(float(eigenvalues[-1] / eigenvalues[0])) if eigenvalues[0] > 0 else math.inf
    gram = torch.empty(len(mean) + 1, len(mean) + 1, dtype=torch.float64)
    gram[0, 0] = n
    gram[0, 1:] = gram[1:, 0] = n * mean
    gram[1:, 1:] = sums.scatter + n * torch.outer(mean, mean)
    eigenvalues = torch.linalg.eigvalsh(gram)
    return math.sqrt(float(eigenvalues[-1] / eigenvalues[0])) if eigenvalues[0] > 0 else math.inf


def collinearity(sums: CenteredSums, identified: Tensor) -> tuple[float, list[float]]:
    """The condition number of the identified features' correlation matrix and each one's variance inflation
    factor 1 / (1 − R²) of it regressed on the others (statsmodels' `variance_inflation_factor` with a constant):
    the diagonal of the inverse correlation matrix. An aliased feature's is infinite, a constant one's NaN."""
    spread = sums.scatter.diagonal().sqrt()
    length = (sums.scatter.diagonal() + sums.rows * sums.feature_means.square()).sqrt()
    varying = spread > ALIAS_TOLERANCE * length  # (a constant column's spread is rounding)
    vif = torch.where(varying, math.inf, math.nan).double()
    if not identified.any():
        return math.nan, vif.tolist()
    correlation = sums.scatter[identified][:, identified] / torch.outer(spread[identified], spread[identified])
    eigenvalues = torch.linalg.eigvalsh(correlation)
    condition = math.sqrt(float(eigenvalues[-1] / eigenvalues[0])) if eigenvalues[0] > 0 else math.inf
    vif[identified] = (
        torch.linalg.pinv(correlation, hermitian=True).diagonal() if math.isfinite(condition) else math.inf
    )
    return condition, vif.tolist()
