"""What an analyst reads off a least-squares fit, per target, in original units: the statistics of statsmodels'
`OLS(y, add_constant(X)).fit().summary()`, from the training split.

The coefficient table, R², F, the likelihood and the condition numbers come from the normal equations every
run gathers anyway (one pass, summed a chunk at a time); the residual diagnostics take a second pass in file
order with the solution known. Neither pass needs the table in memory at once.
"""

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from scipy import stats
from torch import Tensor

from linreg.data import Table
from linreg.least_squares import NormalEquations, intercept_name
from linreg.normalize import CHUNK_ROWS, Normalizer
from linreg.runtime import write_csv_rows, write_json

# Collinearity worth a warning: a feature this much better explained by the others than by chance.
VIF_WARNING = 10.0


@dataclass
class CenteredSums:
    """The training split's sums about the column means, in original units (float64)."""

    rows: int
    feature_means: Tensor  # features
    target_means: Tensor  # targets
    scatter: Tensor  # features²: Σ (x − x̄)(x − x̄)ᵀ
    cross: Tensor  # features × targets: Σ (x − x̄)(y − ȳ)ᵀ
    target_scatter: Tensor  # targets: Σ (y − ȳ)²

    @classmethod
    def of(cls, equations: NormalEquations, features: Normalizer, targets: Normalizer) -> "CenteredSums":
        """From the normal equations of the normalized, shifted columns: centre exactly, then undo the scales."""
        n, d = equations.rows, len(equations.gram) - 1
        x_sums, y_sums = equations.gram[:d, d], equations.cross[d]
        scatter = equations.gram[:d, :d] - torch.outer(x_sums, x_sums) / n
        cross = equations.cross[:d] - torch.outer(x_sums, y_sums) / n
        target_scatter = equations.target_squares - y_sums * y_sums / n
        fx, ox = features.factor.double().cpu(), features.offset.double().cpu()
        fy, oy = targets.factor.double().cpu(), targets.offset.double().cpu()
        return cls(
            rows=n,
            feature_means=(equations.shift_x + x_sums / n - ox) / fx,
            target_means=(equations.shift_y + y_sums / n - oy) / fy,
            scatter=scatter / torch.outer(fx, fx),
            cross=cross / torch.outer(fx, fy),
            target_scatter=target_scatter / (fy * fy),
        )


@dataclass
class Solution:
    """The least-squares fit of the centred sums, with what its uncertainty needs: computed once a run, for the
    statistics and for the prediction intervals the checkpoints keep."""

    sums: CenteredSums
    weight: Tensor  # features × targets, original units
    bias: Tensor  # targets
    inverse_scatter: Tensor  # the pseudo-inverse of the features' scatter
    rank: int  # of the features' scatter: the degrees of freedom of the model besides the intercept
    residual_squares: Tensor  # targets: Σ residual²

    @classmethod
    def of(cls, equations: NormalEquations, features: Normalizer, targets: Normalizer) -> "Solution":
        """Solved on the correlation scale (unit diagonal) for accuracy; constant columns get weight 0."""
        sums = CenteredSums.of(equations, features, targets)
        spread = sums.scatter.diagonal().sqrt()
        scale = torch.where(spread > 0, 1 / spread, torch.zeros_like(spread))
        correlation = sums.scatter * torch.outer(scale, scale)
        inverse = torch.linalg.pinv(correlation, hermitian=True, rtol=1e-10)
        rank = int(torch.linalg.matrix_rank(correlation, hermitian=True, rtol=1e-10))
        inverse_scatter = inverse * torch.outer(scale, scale)
        weight = inverse_scatter @ sums.cross
        bias = sums.target_means - sums.feature_means @ weight
        # Σ e² = Σ (y − ȳ)² − 2 wᵀSxy + wᵀSxx w: exact for any weights, not only the optimum.
        residual_squares = (
            sums.target_scatter - 2 * (weight * sums.cross).sum(0) + (weight * (sums.scatter @ weight)).sum(0)
        )
        return cls(sums, weight, bias, inverse_scatter, rank, residual_squares.clamp_min(0))

    @property
    def df_resid(self) -> int:
        return self.sums.rows - self.rank - 1

    @property
    def residual_variance(self) -> Tensor:
        """σ² per target (NaN without residual degrees of freedom)."""
        if self.df_resid > 0:
            return self.residual_squares / self.df_resid
        return torch.full_like(self.residual_squares, math.nan)


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

    def collinear(self) -> list[str]:
        return [name for name, value in self.vif.items() if value >= VIF_WARNING]

    def save(self, directory: Path) -> None:
        """coefficients.csv and statistics.json in the run directory (an empty cell or null: not defined)."""
        record = {
            "ci": self.ci,
            "condition_number": self.condition_number,
            "condition_number_standardized": self.condition_number_standardized,
            "vif": self.vif,
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
    for j, target in enumerate(table.target_names):
        estimates = [*solution.weight[:, j].tolist(), float(solution.bias[j])]
        errors = coefficient_errors(sums, solution, float(sigma2[j]))
        names = [*table.feature_names, intercept_name(table.feature_names)]
        for name, estimate, error in zip(names, estimates, errors, strict=True):
            coefficients.append({"target": target, "feature": name, **inference(estimate, error, df_resid, ci)})
        if trained is not None:
            for row, value in zip(
                coefficients[-len(names) :], [*trained[0][j].tolist(), float(trained[1][j])], strict=True
            ):
                row["trained"] = value
        per_target[target] = fit_summary(
            n, rank, float(solution.residual_squares[j]), float(sums.target_scatter[j]), moments[j]
        )
    standardized, vif = collinearity(sums)
    return FitStatistics(
        feature_names=list(table.feature_names),
        target_names=list(table.target_names),
        ci=ci,
        coefficients=coefficients,
        targets=per_target,
        condition_number=raw_condition_number(sums),
        condition_number_standardized=standardized,
        vif=dict(zip(table.feature_names, vif, strict=True)),
    )


def coefficient_errors(sums: CenteredSums, solution: Solution, sigma2: float) -> list[float]:
    """Standard errors of the weights, then of the bias: σ²·(XᵀX)⁺ of the centred design, and for the bias
    σ²·(1/n + x̄ᵀ S⁺ x̄). A constant column's weight is not identifiable (the bias carries it): NaN."""
    variances = sigma2 * solution.inverse_scatter.diagonal()
    bias_variance = sigma2 * (1 / sums.rows + sums.feature_means @ solution.inverse_scatter @ sums.feature_means)
    identifiable = sums.scatter.diagonal() > 0
    errors = torch.where(identifiable, variances.clamp_min(0).sqrt(), torch.full_like(variances, math.nan))
    return [*errors.tolist(), math.sqrt(max(float(bias_variance), 0.0))]


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


def fit_summary(n: int, rank: int, residual_squares: float, total_squares: float, moments: dict) -> TargetStatistics:
    """R², F and the Gaussian likelihood's criteria, as statsmodels defines them for a model with an intercept."""
    df_model, df_resid = rank, n - rank - 1
    r2 = 1 - residual_squares / total_squares if total_squares > 0 else math.nan
    adj_r2 = 1 - (n - 1) / df_resid * (1 - r2) if df_resid > 0 else math.nan
    explained = total_squares - residual_squares
    if df_model > 0 and df_resid > 0 and residual_squares > 0:
        f_statistic = (explained / df_model) / (residual_squares / df_resid)
        f_p_value = float(stats.f.sf(f_statistic, df_model, df_resid))
    else:
        f_statistic = f_p_value = math.nan
    log_likelihood = (
        -n / 2 * (math.log(2 * math.pi) + math.log(residual_squares / n) + 1) if residual_squares > 0 else math.inf
    )
    parameters = df_model + 1
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
    for x, y in table.chunks(chunk_rows):
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
    gram = torch.empty(len(mean) + 1, len(mean) + 1, dtype=torch.float64)
    gram[0, 0] = n
    gram[0, 1:] = gram[1:, 0] = n * mean
    gram[1:, 1:] = sums.scatter + n * torch.outer(mean, mean)
    eigenvalues = torch.linalg.eigvalsh(gram)
    return math.sqrt(float(eigenvalues[-1] / eigenvalues[0])) if eigenvalues[0] > 0 else math.inf


def collinearity(sums: CenteredSums) -> tuple[float, list[float]]:
    """The condition number of the features' correlation matrix and each feature's variance inflation
    factor 1 / (1 − R²) of it regressed on the others (statsmodels' `variance_inflation_factor` with a constant):
    the diagonal of the inverse correlation matrix."""
    spread = sums.scatter.diagonal().sqrt()
    varying = spread > 0
    vif = torch.full_like(spread, math.nan)
    if not varying.any():
        return math.nan, vif.tolist()
    correlation = sums.scatter[varying][:, varying] / torch.outer(spread[varying], spread[varying])
    eigenvalues = torch.linalg.eigvalsh(correlation)
    condition = math.sqrt(float(eigenvalues[-1] / eigenvalues[0])) if eigenvalues[0] > 0 else math.inf
    vif[varying] = torch.linalg.pinv(correlation, hermitian=True).diagonal() if math.isfinite(condition) else math.inf
    return condition, vif.tolist()
