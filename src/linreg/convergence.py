"""The verdict at the end of every run: did training reach the exact answer, and if not, what to change.

Linear regression with an MSE loss has one: least squares. A run is `converged` when every coefficient of its
final weights (in original units) is within `convergence.rtol` of least squares': the difference as a fraction of
the coefficient, or of its standard error where that is larger (`train/coefficient_gap`). What a user reads off a
run is its coefficients and its predictions, and a small loss gap (`train/gap_to_ols`) can hide coefficients far
apart on correlated columns. The verdict informs; it never fails a run.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

# The rounding of each trainer.precision (by its start: 16-mixed and 16-true alike), a value's relative error.
ROUNDING = {"64": 2.0**-53, "32": 2.0**-24, "16": 2.0**-11, "bf16": 2.0**-8, "": 2.0**-24}
# Optimizers whose step is about lr per weight whatever the gradient's size.
ADAPTIVE = ("Adam", "AdamW", "Adamax", "NAdam", "RAdam", "RMSprop", "Adagrad", "Adadelta")


@dataclass
class TrainingFacts:
    """What the advice for a run that missed is drawn from."""

    gaps: Sequence[float]  # train/coefficient_gap at each epoch end (empty without the convergence callback)
    epochs: int
    steps: int
    lr: float
    optimizer: str  # the torch optimizer's class name
    full_batch: bool
    scheduled: bool
    normalize: str
    normalize_targets: bool
    largest_coefficient: float  # the largest least-squares weight or bias in the space the model trains in
    streamed: bool = False  # data.stream: no full batches
    condition_number: float = math.nan  # of the features' correlation matrix (statistics.json)
    precision: str = "32-true"  # trainer.precision

    def rounding_floor(self, precision: str | None = None) -> float:
        """About how close weights can come to least squares' coefficients: the rounding of the training
        precision (or of `precision`: float32's 2⁻²⁴, float64's 2⁻⁵³) amplified by the square of the standardized
        condition number (the curvature of the loss)."""
        precision = str(precision or self.precision)
        unit = next(value for prefix, value in ROUNDING.items() if precision.startswith(prefix))
        return 0.0 if math.isnan(self.condition_number) else self.condition_number**2 * unit  # (NaN: unknown)

    def bigger_batches(self) -> str:
        """How to get less noisy gradients: full batches, or with a streamed table, larger ones."""
        return "larger batches (data.batch_size)" if self.streamed else "full batches (data.batch_size=null)"


@dataclass
class Verdict:
    gap: float | None  # train/coefficient_gap of the final weights; None where least squares is not the aim
    rtol: float
    advice: list[str] = field(default_factory=list)
    why_none: str = "least squares is the optimum of loss=mse only"  # when gap is None
    aim: str = "least squares"  # the exact optimum's name: ridge, lasso, elastic net with model.l2 / model.l1

    @property
    def converged(self) -> bool | None:
        return None if self.gap is None else self.gap < self.rtol

    @property
    def aims(self) -> str:
        """The optimum's name as a possessive: least squares', ridge's."""
        return self.aim + ("'" if self.aim.endswith("s") else "'s")

    def sentence(self) -> str:
        if self.gap is None:
            return f"no verdict: {self.why_none}."
        if self.converged:
            return (
                f"converged: every coefficient is at {self.aims} (train/coefficient_gap {self.gap:.2g}, the largest "
                f"difference as a fraction of the coefficient or its standard error, is under "
                f"convergence.rtol={self.rtol:g})."
            )
        apart = f"{self.gap:.3g}×" if self.gap >= 10 else f"{100 * self.gap:.3g} %"
        return (
            f"NOT converged: a coefficient is {apart} of its size (or standard error) away from {self.aims} "
            f"(train/coefficient_gap; convergence.rtol={self.rtol:g}). Likely fix: {'; or '.join(self.advice)}."
        )


def judge(gap: float | None, rtol: float, facts: TrainingFacts, aim: str = "least squares") -> Verdict:
    """The verdict on the final weights' gap to `aim`, with the likely fixes for this run when it missed."""
    verdict = Verdict(gap, rtol, aim=aim)
    if gap is not None and not gap < rtol:
        verdict.advice = likely_fixes(gap, rtol, facts)
    return verdict


def likely_fixes(gap: float, rtol: float, facts: TrainingFacts) -> list[str]:
    """Read the gap's history: too short a reach, a rising gap, a noise floor, or still falling."""
    gaps = [g for g in facts.gaps if math.isfinite(g)]
    fixes = []
    if facts.rounding_floor() > rtol:  # (no optimizer setting helps: the rounding of the arithmetic stops it)
        squared = f"the square of the features' standardized condition number, {facts.condition_number:.3g}"
        if facts.rounding_floor("64-true") <= rtol:
            return [
                f"trainer.precision=64-true: the rounding of trainer.precision={facts.precision}, amplified by "
                f"{squared}, is about {facts.rounding_floor():.1g} of a coefficient, above convergence.rtol={rtol:g}"
            ]
        return [
            f"none in training: even float64's rounding, amplified by {squared}, is about "
            f"{facts.rounding_floor('64-true'):.1g} of a coefficient. Use the least-squares coefficients "
            "(coefficients.csv), or leave out or rescale the collinear columns"
        ]
    if facts.optimizer in ADAPTIVE and facts.lr * facts.steps < facts.largest_coefficient:
        remedy = "normalized targets (data.normalize_targets=true) or " if not facts.normalize_targets else ""
        fixes.append(
            f"{remedy}a higher optimizer.lr: {facts.optimizer} moves each weight by about lr per step, and "
            f"{facts.steps} steps of {facts.lr:g} cannot reach least-squares coefficients of "
            f"{facts.largest_coefficient:.3g}"
        )
    elif not gaps:
        fixes.append(
            f"more epochs, or optimizer=sgd with optimizer.lr=auto and {facts.bigger_batches()} "
            "(with the gap's history, kept by callbacks.convergence in one process, this advice would be sharper)"
        )
    elif not facts.full_batch and not facts.scheduled and (rising(gaps) or recent_ratio(gaps) > 0.9):
        fixes.append(
            f"a decaying schedule (scheduler=cosine), {facts.bigger_batches()} or a learning rate below "
            f"{facts.lr:g}: with mini-batches at a constant learning rate the gap stops falling at a noise floor"
        )
    elif rising(gaps):
        fixes.append(f"a lower learning rate (optimizer.lr={facts.lr:g} made the gap grow again)")
    else:
        needed = epochs_needed(gaps, rtol, facts.epochs) if recent_ratio(gaps) < 1 else None
        if needed and needed <= 10 * facts.epochs:
            fixes.append(f"more epochs (trainer.max_epochs={needed}): the gap was still falling")
        else:
            pace = f"at its pace it would need about {needed} epochs" if needed else "the gap stalled"
            fixes.append(
                f"a higher learning rate (optimizer.lr={facts.lr:g}: {pace}), "
                f"or optimizer=sgd with optimizer.lr=auto and {facts.bigger_batches()}"
            )
    if facts.normalize == "none":
        fixes.append("standardized inputs (data.normalize=standardize), on which every optimizer has an easier path")
    return fixes


def rising(gaps: Sequence[float]) -> bool:
    return gaps[-1] > 2 * min(gaps)


def recent_ratio(gaps: Sequence[float]) -> float:
    """How much the gap shrank over the last fifth of the run (1: not at all)."""
    span = max(1, len(gaps) // 5)
    if len(gaps) <= span or gaps[-1 - span] <= 0:
        return 1.0
    return gaps[-1] / gaps[-1 - span]


def epochs_needed(gaps: Sequence[float], rtol: float, epochs: int) -> int:
    """The epochs at which the gap, falling as it did over the last fifth of the run, would be under rtol."""
    per_epoch = recent_ratio(gaps) ** (1 / max(1, len(gaps) // 5))
    more = math.log(rtol / gaps[-1]) / math.log(per_epoch)
    needed = math.ceil(epochs + 1.2 * max(1.0, more))  # a margin: the rate of the last fifth need not hold
    unit = 10 ** max(0, len(str(needed)) - 2)  # rounded up to two significant digits
    return -(-needed // unit) * unit
