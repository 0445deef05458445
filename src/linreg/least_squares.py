"""The exact answer linear regression has: least squares on the training split, to judge the optimizer by.

One pass over a split gathers its normal equations (XᵀX, Xᵀy and yᵀy of the normalized columns, in
float64). They give the least-squares fit, and the MSE of *any* weights on that split without another
pass over the rows: the loss is a quadratic function of the weights.

With penalties (`model.l2`, `model.l1`) the training objective is, in the normalized space,

    MSE + (l2·ΣW² + l1·Σ|W|) / targets        (W: the weights, targets × features; the bias is not penalized)

so each target's problem is that of a model with it alone: (1/n)·‖y − Xw − b‖² + l2·‖w‖² + l1·‖w‖₁. Its
exact optimum comes from the same normal equations: ridge (l1 = 0) in closed form, the lasso and the elastic
net by coordinate descent. In scikit-learn's terms, on the same normalized columns with fit_intercept=True:
Ridge(alpha = n·l2), Lasso(alpha = l1/2), ElasticNet(alpha = l1/2 + l2, l1_ratio = (l1/2) / (l1/2 + l2)).
"""

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import torch
from torch import Tensor

from linreg.normalize import CHUNK_ROWS, Normalizer, to_original_units

# The gap to least squares is a fraction of the least-squares MSE, or of this much of the targets' variance
# if that is larger (a table a line fits exactly).
GAP_FLOOR = 1e-6
# Coordinate descent for l1 stops when no weight moved more than this fraction of the largest weight in a sweep.
COORDINATE_TOLERANCE = 1e-12
MAX_SWEEPS = 100_000


def penalty(weight: Tensor, l1: float = 0.0, l2: float = 0.0) -> Tensor:
    """The penalty term of the training objective (see the module's docstring); differentiable."""
    terms = weight.new_zeros(())
    if l2:
        terms = terms + l2 * (weight * weight).sum()
    if l1:
        terms = terms + l1 * weight.abs().sum()
    return terms / weight.shape[0]


def soft_threshold(values: Tensor, threshold: float | Tensor) -> Tensor:
    """The proximal step of an l1 penalty: values moved toward zero by `threshold`, and zero within it."""
    return values.sign() * (values.abs() - threshold).clamp(min=0)


class Rows(Protocol):
    """A split's rows as this module reads them: a data.Table, or a streamed split (data/stream.py). This module
    knows nothing else of the data code, which builds on it."""

    feature_names: list[str]
    target_names: list[str]

    def chunks(self, chunk_rows: int) -> Iterator[tuple[Tensor, Tensor]]:
        """The rows a piece at a time, as float64 on the CPU."""

    def equations(
        self, features: Normalizer, targets: Normalizer, shifts: tuple[Tensor, Tensor] | None = None
    ) -> "NormalEquations":
        """The split's normal equations in the normalized space."""


def normalized_chunks(
    table: Rows, features: Normalizer, targets: Normalizer, chunk_rows: int
) -> Iterator[tuple[Tensor, Tensor]]:
    """The table's rows a piece at a time, normalized as the model sees them, in float64 on the CPU (normalized in
    float64 too: the sums are then exact for the table's own values, as an independent fit of them would be)."""
    fx, ox, fy, oy = (t.double().cpu() for t in (features.factor, features.offset, targets.factor, targets.offset))
    for x, y in table.chunks(chunk_rows):
        yield x * fx + ox, y * fy + oy


@dataclass
class NormalEquations:
    """The sums of one split that every linear fit on it depends on, kept as the triangular factor R of its rows.

    The rows [x − shift_x, 1, y − shift_y] are decomposed a chunk at a time (Householder QR of R stacked on the
    next chunk: a tall-skinny QR), so RᵀR holds the normal equations (`gram`, `cross`, `target_squares`) while R
    itself solves least squares without squaring the columns' condition number. Two such factors merge exactly
    (stacked and decomposed again): across row groups, chunks and processes. The shifts (the first chunk's means)
    keep columns far from zero (temperatures around 80, say) from coupling to the bias.
    """

    triangle: Tensor  # (features + 1 + targets)², upper triangular: R of [x − shift_x, 1, y − shift_y]
    rows: int
    shift_x: Tensor
    shift_y: Tensor

    @classmethod
    def of(
        cls,
        table: Rows,
        features: Normalizer,
        targets: Normalizer,
        shifts: tuple[Tensor, Tensor] | None = None,
        chunk_rows: int = CHUNK_ROWS,
    ) -> "NormalEquations":
        """Gather them in one pass over the table's rows (cheap for millions of rows)."""
        chunks = normalized_chunks(table, features, targets, chunk_rows)
        return cls.gather(chunks, features.factor.numel(), targets.factor.numel(), shifts)

    @classmethod
    def gather(
        cls, chunks: Iterable[tuple[Tensor, Tensor]], n_features: int, n_targets: int, shifts: tuple | None = None
    ) -> "NormalEquations":
        """The factor of the rows of (features, targets) chunks in float64, shifted by `shifts` (by default the
        first chunk's means)."""
        size = n_features + 1 + n_targets
        triangle, rows = torch.zeros(size, size, dtype=torch.float64), 0
        for x, y in chunks:
            if shifts is None:
                shifts = x.mean(0), y.mean(0)
            ones = torch.ones(len(x), 1, dtype=torch.float64)
            triangle = triangular_factor(torch.cat([triangle, torch.cat([x - shifts[0], ones, y - shifts[1]], 1)]))
            rows += len(x)
        if shifts is None:  # (no rows at all)
            shifts = torch.zeros(n_features, dtype=torch.float64), torch.zeros(n_targets, dtype=torch.float64)
        return cls(triangle, rows, *shifts)

    @property
    def products(self) -> Tensor:
        """RᵀR: the cross-products of [x − shift_x, 1, y − shift_y]."""
        return self.triangle.T @ self.triangle

    @property
    def gram(self) -> Tensor:
        """[x − shift_x, 1]ᵀ[x − shift_x, 1]."""
        end = len(self.shift_x) + 1
        return self.products[:end, :end]

    @property
    def cross(self) -> Tensor:
        """[x − shift_x, 1]ᵀ(y − shift_y): (features + 1) × targets."""
        end = len(self.shift_x) + 1
        return self.products[:end, end:]

    @property
    def target_squares(self) -> Tensor:
        """Σ (y − shift_y)² per target."""
        return self.triangle[:, len(self.shift_x) + 1 :].square().sum(0)

    def normalized(self, features: Normalizer, targets: Normalizer) -> "NormalEquations":
        """This factor of raw columns as that of the normalized columns, without another pass:
        (x − shift)·factor = (x·factor + offset) − (shift·factor + offset), so each column is only rescaled
        (and a rescaled triangle's columns are still a triangle's)."""
        fx, ox, fy, oy = (t.double().cpu() for t in (features.factor, features.offset, targets.factor, targets.offset))
        scale = torch.cat([fx, torch.ones(1, dtype=torch.float64), fy])  # (the bias column of ones stays)
        return NormalEquations(self.triangle * scale, self.rows, self.shift_x * fx + ox, self.shift_y * fy + oy)

    def shifted(self, shift_x: Tensor, shift_y: Tensor) -> "NormalEquations":
        """The same rows' factor about other shifts, exactly."""
        return NormalEquations(triangular_factor(self.moved(shift_x, shift_y)), self.rows, shift_x, shift_y)

    def moved(self, shift_x: Tensor, shift_y: Tensor) -> Tensor:
        """R·M, whose cross-products are those of [x − shift_x, 1, y − shift_y]: with d = old − new shift,
        [x − new, 1, y − new] is [x − old, 1, y − old]·M, M the identity with d in the bias column's row."""
        move = torch.eye(len(self.triangle), dtype=torch.float64)
        bias = len(self.shift_x)
        move[bias, :bias] = self.shift_x - shift_x
        move[bias, bias + 1 :] = self.shift_y - shift_y
        return self.triangle @ move

    def absorb(self, other: "NormalEquations") -> None:
        """Add the rows of `other` (gathered apart: by another process, or from another row group) to these
        equations, in place, about these shifts."""
        moved = other.shifted(self.shift_x, self.shift_y)
        self.triangle = triangular_factor(torch.cat([self.triangle, moved.triangle]))
        self.rows += moved.rows

    @staticmethod
    def combined(parts: "list[NormalEquations]") -> "NormalEquations":
        """The equations of all the parts' rows together, about the first part's shifts."""
        first = parts[0]
        whole = NormalEquations(first.triangle.clone(), first.rows, first.shift_x, first.shift_y)
        for part in parts[1:]:
            whole.absorb(part)
        return whole

    def intercept_first(self) -> Tensor:
        """R of [1, x − shift_x, y − shift_y]: its first row holds each column's sum over ±√rows, and the rest is
        the triangle of the columns minus their means (centred without the cancellation of Σx² − (Σx)²/n)."""
        bias = len(self.shift_x)
        return triangular_factor(self.triangle[:, [bias, *range(bias), *range(bias + 1, len(self.triangle))]])

    def unshifted(self, intercept: bool = True) -> Tensor:
        """R of the rows as they are: [1, x, y], the intercept first; without an `intercept`, [x, y] (a model
        through the origin's)."""
        features = len(self.shift_x)
        moved = self.moved(torch.zeros_like(self.shift_x), torch.zeros_like(self.shift_y))  # (one decomposition)
        order = [features] * intercept + [*range(features), *range(features + 1, len(moved))]
        return triangular_factor(moved[:, order])

    def means_and_deviations(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Each feature's and target's mean and standard deviation (over the rows, as numpy's std)."""
        first, features = self.intercept_first(), len(self.shift_x)
        means = first[0, 1:] / first[0, 0]  # (of the shifted columns)
        deviations = (first[1:, 1:].square().sum(0) / self.rows).sqrt()
        return (
            self.shift_x + means[:features],
            deviations[:features],
            self.shift_y + means[features:],
            deviations[features:],
        )

    def coefficients(self, weight: Tensor, bias: Tensor) -> Tensor:
        """A linear map of normalized columns as the (features + 1) × targets solution of these equations."""
        weight, bias = weight.detach().double().cpu(), bias.detach().double().cpu()
        intercept = bias + weight @ self.shift_x - self.shift_y
        return torch.cat([weight.T, intercept[None]], dim=0)

    def curvatures(self, l2: float = 0.0, intercept: bool = True) -> tuple[float, float]:
        """The largest and the smallest non-zero eigenvalue of the MSE's Hessian (plus that of an `l2` penalty) in
        the model's weights and bias: 2·([x, 1]ᵀ[x, 1] / rows + l2 on the weights) / targets of the normalized
        columns, unshifted (columns far from zero couple the bias to the weights). Zero ones (a constant or
        exactly repeated column) are left out: the gradient never points along them, so they do not slow
        gradient descent down.
        """
        unshift = torch.eye(len(self.gram), dtype=torch.float64)
        unshift[-1, :-1] = self.shift_x  # [x − shift, 1] · unshift = [x, 1]
        hessian = unshift.T @ self.gram @ unshift / self.rows + l2 * torch.diag(weights_only(len(self.gram)))
        if not intercept:  # (no bias to move: the weights' block alone)
            hessian = hessian[:-1, :-1]
        eigenvalues = torch.linalg.eigvalsh(hessian) * 2 / len(self.target_squares)
        largest = float(eigenvalues[-1])
        return largest, float(eigenvalues[eigenvalues > 1e-12 * largest].min())

    def loss(self, weight: Tensor, bias: Tensor) -> float:
        """The MSE (normalized space, mean over rows and targets) of these weights on the split."""
        solution = self.coefficients(weight, bias)
        targets = solution.shape[1]  # ‖[x − shift, 1, y − shift]·[−solution; I]‖² = ‖R·[−solution; I]‖²
        residuals = self.triangle @ torch.cat([-solution, torch.eye(targets, dtype=torch.float64)])
        return float(residuals.square().sum()) / (self.rows * targets)

    def centered(self) -> tuple[Tensor, Tensor]:
        """XᵀX and Xᵀy of the columns minus their means: the normal equations of the weights, the bias solved."""
        centred = self.intercept_first()[1:, 1:]
        products, features = centred.T @ centred, len(self.shift_x)
        return products[:features, :features], products[:features, features:]

    def with_bias(self, weight: Tensor) -> tuple[Tensor, Tensor]:
        """The weights (features × targets, centered problem) with the bias that is best for them."""
        intercept = (self.cross[-1] - self.gram[-1, :-1] @ weight) / self.rows  # shifted columns
        weight = weight.T.contiguous()
        return weight, intercept + self.shift_y - weight @ self.shift_x

    def constant_loss(self) -> float:
        """The MSE of the best constant prediction (each target's mean): the targets' variance."""
        targets = self.intercept_first()[1:, len(self.shift_x) + 1 :]  # (centred)
        return float(targets.square().sum()) / (self.rows * targets.shape[1])


def triangular_factor(rows: Tensor) -> Tensor:
    """R of the QR decomposition of `rows` (at least as many rows as columns): RᵀR = rowsᵀrows."""
    return torch.linalg.qr(rows, mode="r").R


def no_bias(equations: NormalEquations) -> Tensor:
    return torch.zeros(len(equations.shift_y), dtype=torch.float64)


def weights_only(size: int) -> Tensor:
    """The diagonal of the penalties' Hessian pattern: 1 for each weight, 0 for the bias (the last column)."""
    pattern = torch.ones(size, dtype=torch.float64)
    pattern[-1] = 0
    return pattern


@dataclass
class LeastSquares:
    """The exact optimum of the training objective (least squares, or with `l1`, `l2` penalties: the lasso,
    ridge or elastic-net fit) in the normalized space the model trains in."""

    weight: Tensor  # targets × features
    bias: Tensor
    train_loss: float  # its objective on the training split: the lowest train/loss that loss=mse can reach
    train_equations: NormalEquations
    l1: float = 0.0
    l2: float = 0.0
    intercept: bool = True  # False: a line through the origin (model.net.bias=false), its bias 0
    # What each coefficient's distance is measured against, in original units (statistics.Solution.coefficient_scale)
    scale: tuple[Tensor, Tensor] | None = field(default=None, repr=False)
    penalized_fits: dict = field(default_factory=dict, repr=False, compare=False)  # (l1, l2): LeastSquares

    @property
    def name(self) -> str:
        """How the summary labels this fit."""
        return {(False, False): "least squares", (False, True): "ridge", (True, False): "lasso"}.get(
            (bool(self.l1), bool(self.l2)), "elastic net"
        )

    def objective(self, weight: Tensor, bias: Tensor, equations: NormalEquations | None = None) -> float:
        """The training objective of these weights on `equations`' split (the training split's by default)."""
        equations = equations or self.train_equations
        return equations.loss(weight, bias) + float(penalty(weight.detach().double().cpu(), self.l1, self.l2))

    def penalized(self, l1: float, l2: float) -> "LeastSquares":
        """The exact optimum with these penalties, from the same normal equations (computed once for each)."""
        if not l1 and not l2:
            return self
        if (l1, l2) not in self.penalized_fits:
            weight, bias = penalized_fit(self.train_equations, l1, l2, self.intercept)
            optimum = LeastSquares(weight, bias, 0.0, self.train_equations, l1, l2, self.intercept, self.scale)
            optimum.train_loss = optimum.objective(weight, bias)
            self.penalized_fits[(l1, l2)] = optimum
        return self.penalized_fits[(l1, l2)]

    def loss_on(self, table: Rows, features: Normalizer, targets: Normalizer) -> float:
        """Its MSE (normalized space) on another split, such as the validation split."""
        return self.equations_of(table, features, targets).loss(self.weight, self.bias)

    def equations_of(self, table: Rows, features: Normalizer, targets: Normalizer) -> NormalEquations:
        """The normal equations of another split (in memory or streamed), about the training split's shifts."""
        return table.equations(features, targets, (self.train_equations.shift_x, self.train_equations.shift_y))

    def gap(self, weight: Tensor, bias: Tensor, equations: NormalEquations | None = None) -> float:
        """How far above least squares the MSE of these weights is, as a fraction of the least-squares MSE:
        `train/gap_to_ols` (on `equations`, the validation split's say, `val/gap_to_ols`).

        A table that a line fits exactly has a least-squares MSE of rounding errors: the fraction is then
        taken of a millionth of the targets' variance instead, which float32 weights can get within.
        """
        equations = equations or self.train_equations
        trained_on = equations is self.train_equations  # (its objective there is known: no recomputing each epoch)
        best = self.train_loss if trained_on else self.objective(self.weight, self.bias, equations)
        scale = max(best, GAP_FLOOR * self.train_equations.constant_loss())
        excess = self.objective(weight, bias, equations) - best
        return excess / scale if scale > 0 else (0.0 if excess <= 0 else math.inf)

    def coefficient_gap(self, weight: Tensor, bias: Tensor, features: Normalizer, targets: Normalizer) -> float:
        """How far the coefficients of these weights (normalized space) are from this optimum's, in original units:
        the largest difference as a fraction of the coefficient's `scale` (its size, or its standard error if
        larger). `train/coefficient_gap`, which the verdict judges. Where some features are aliased (least squares
        does not pin their coefficients down, and training may share a coefficient out among them differently), the
        gap of the training objective instead (`gap`)."""
        if self.scale is not None and not self.scale[0].isfinite().all():
            return self.gap(weight, bias)
        trained = to_original_units(weight, bias, features, targets)
        optimum = self.equation(features, targets)
        scale = self.scale or tuple(value.abs() for value in optimum)
        gaps = [
            ((mine - best).abs() / size.clamp_min(1e-300)).where(size.isfinite(), 0.0)
            for mine, best, size in zip(trained, optimum, scale, strict=True)
        ]
        return float(torch.cat([gap.flatten() for gap in gaps]).max())

    def step_size(self) -> float:
        """The learning rate `optimizer.lr=auto` gives with a momentum of your choice: 1 / the largest
        curvature L of the training MSE, the longest step that shrinks every direction (the classic 1/L)."""
        return 1.0 / self.train_equations.curvatures(self.l2, self.intercept)[0]

    def heavy_ball(self) -> tuple[float, float]:
        """`optimizer.lr=auto` with `optimizer.momentum=auto`: Polyak's heavy ball, the fastest fixed lr and
        momentum of gradient descent on a quadratic with curvatures from μ to L, the MSE of a linear model:
        lr = 4 / (√L + √μ)², momentum = ((√L − √μ) / (√L + √μ))². The gap then shrinks by about
        ((√κ − 1) / (√κ + 1))² a step, κ = L / μ: a condition number of 100 takes tens of full-batch epochs.
        """
        largest, smallest = (math.sqrt(c) for c in self.train_equations.curvatures(self.l2, self.intercept))
        return 4 / (largest + smallest) ** 2, ((largest - smallest) / (largest + smallest)) ** 2

    def equation(self, features: Normalizer, targets: Normalizer) -> tuple[Tensor, Tensor]:
        return to_original_units(self.weight, self.bias, features, targets)


def fit_least_squares(
    table: Rows, features: Normalizer, targets: Normalizer, chunk_rows: int = CHUNK_ROWS
) -> LeastSquares:
    """Solve the normal equations of the table's rows."""
    return solve(NormalEquations.of(table, features, targets, chunk_rows=chunk_rows))


@dataclass
class TrainingSums:
    """What one pass over the training rows gathers: their normal equations in raw units and each column's
    range. The normalization's statistics and the least-squares fit in the normalized space follow from them
    without another pass."""

    equations: NormalEquations  # of the raw columns
    feature_range: tuple[Tensor, Tensor]  # lowest and highest value of each feature
    target_range: tuple[Tensor, Tensor]

    @classmethod
    def of(cls, table: Rows, chunk_rows: int = CHUNK_ROWS) -> "TrainingSums":
        return cls.gather(table.chunks(chunk_rows), len(table.feature_names), len(table.target_names))

    @classmethod
    def gather(cls, chunks: Iterable[tuple[Tensor, Tensor]], n_features: int, n_targets: int) -> "TrainingSums":
        """The sums of float64 (features, targets) chunks of raw rows (at least one row). The ranges are kept in
        tensors made once: a small tensor kept per chunk, between the chunks' big ones, fragments the heap (a
        streamed pass over 20 million rows grew the process by more than a gigabyte)."""
        low_x, high_x = (torch.full((n_features,), bound, dtype=torch.float64) for bound in (math.inf, -math.inf))
        low_y, high_y = (torch.full((n_targets,), bound, dtype=torch.float64) for bound in (math.inf, -math.inf))

        def noting_ranges() -> Iterator[tuple[Tensor, Tensor]]:
            for x, y in chunks:
                for values, low, high in ((x, low_x, high_x), (y, low_y, high_y)):
                    torch.minimum(low, values.amin(0), out=low)
                    torch.maximum(high, values.amax(0), out=high)
                yield x, y

        equations = NormalEquations.gather(noting_ranges(), n_features, n_targets)
        return cls(equations, (low_x, high_x), (low_y, high_y))

    @staticmethod
    def combined(parts: "list[TrainingSums]") -> "TrainingSums":
        """The sums of all the parts' rows together."""

        def span(ranges: list[tuple[Tensor, Tensor]]) -> tuple[Tensor, Tensor]:
            return torch.stack([low for low, _ in ranges]).amin(0), torch.stack([high for _, high in ranges]).amax(0)

        return TrainingSums(
            NormalEquations.combined([part.equations for part in parts]),
            span([part.feature_range for part in parts]),
            span([part.target_range for part in parts]),
        )

    def keeping(self, kept: Sequence[bool]) -> "TrainingSums":
        """The sums of the same rows with only the `kept` features (the triangle of a subset of its columns)."""
        kept = torch.tensor(list(kept), dtype=torch.bool)
        equations, features = self.equations, len(kept)
        columns = [*kept.nonzero().flatten().tolist(), *range(features, len(equations.triangle))]
        triangle = triangular_factor(equations.triangle[:, columns])
        low, high = self.feature_range
        return TrainingSums(
            NormalEquations(triangle, equations.rows, equations.shift_x[kept], equations.shift_y),
            (low[kept], high[kept]),
            self.target_range,
        )

    def statistics(self, of_targets: bool = False) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Mean, standard deviation, lowest and highest value of each feature (or target): Normalizer.fit's."""
        mean_x, sd_x, mean_y, sd_y = self.equations.means_and_deviations()
        low, high = self.target_range if of_targets else self.feature_range
        return (mean_y, sd_y, low, high) if of_targets else (mean_x, sd_x, low, high)


def intercept_name(feature_names: Sequence[str]) -> str:
    """The intercept's row in coefficients.csv, the summary and the weights/ curves: `bias`, unless a feature
    has that name (then R's `(intercept)`), so that no two rows share a name."""
    return "(intercept)" if "bias" in feature_names else "bias"


def solve_training_sums(
    sums: TrainingSums, features: Normalizer, targets: Normalizer, intercept: bool = True
) -> LeastSquares:
    """The training split's least squares in the normalized space the model trains in, from the sums of the one
    pass that also gave the normalization's statistics: no second pass over the rows."""
    return solve(sums.equations.normalized(features, targets), intercept)


def solve(equations: NormalEquations, intercept: bool = True) -> LeastSquares:
    """The least-squares fit of these equations: R₁₁·solution = R₁₂ of their triangle (no normal equations);
    without an `intercept`, of the triangle of the unshifted columns, the bias 0."""
    features = len(equations.shift_x)
    if intercept:
        triangle, columns = equations.triangle, features + 1
    else:
        triangle, columns = equations.unshifted(intercept=False), features
    # (lstsq also copes with collinear columns)
    solution = torch.linalg.lstsq(triangle[:columns, :columns], triangle[:columns, columns:]).solution
    weight = solution[:features].T.contiguous()
    if intercept:
        bias = solution[-1] + equations.shift_y - weight @ equations.shift_x
    else:
        bias = no_bias(equations)
    return LeastSquares(weight, bias, equations.loss(weight, bias), equations, intercept=intercept)


def penalized_fit(equations: NormalEquations, l1: float, l2: float, intercept: bool = True) -> tuple[Tensor, Tensor]:
    """The weights and bias that minimize the penalized objective on `equations`' split, exactly: ridge in
    closed form, with l1 by cyclic coordinate descent on the centered normal equations (the objective is convex;
    each coordinate's minimum is a soft threshold), to COORDINATE_TOLERANCE."""
    if intercept:
        gram, cross = equations.centered()
    else:
        triangle, features = equations.unshifted(intercept=False), len(equations.shift_x)
        products = triangle.T @ triangle
        gram, cross = products[:features, :features], products[:features, features:]
    rows = equations.rows
    if not l1:
        weight = torch.linalg.solve(gram + rows * l2 * torch.eye(len(gram), dtype=torch.float64), cross)
        return equations.with_bias(weight) if intercept else (weight.T.contiguous(), no_bias(equations))
    # Per coordinate j: minimize (1/n)(C_jj·w_j² − 2·ρ_j·w_j) + l2·w_j² + l1·|w_j|, ρ_j = c_j − Σ_k≠j C_jk·w_k.
    weight = torch.zeros_like(cross)
    diagonal = 2 * gram.diagonal() / rows + 2 * l2
    for _ in range(MAX_SWEEPS):
        largest_move = 0.0
        for j in range(len(gram)):
            if diagonal[j] == 0:  # a constant column (and no l2): its weight stays 0
                continue
            rho = cross[j] - gram[j] @ weight + gram[j, j] * weight[j]
            new = soft_threshold(2 * rho / rows, l1) / diagonal[j]
            largest_move = max(largest_move, float((new - weight[j]).abs().max()))
            weight[j] = new
        if largest_move <= COORDINATE_TOLERANCE * max(float(weight.abs().max()), 1.0):
            break
    return equations.with_bias(weight) if intercept else (weight.T.contiguous(), no_bias(equations))
