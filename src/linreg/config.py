"""The typed schema of the settings: every key a job reads is checked here before anything runs.

The YAML files in configs/ give the values; these dataclasses give each key's type and range, so
`trainer.max_epochs=abc` is an error about that key, not a traceback from deep inside Lightning.
Keys the schema does not name (any other Trainer or optimizer argument) pass through unchecked.
Light on purpose (no torch): Hydra's `--help` and `--cfg` stay fast.
"""

import dataclasses
import enum
import math
import typing
from dataclasses import dataclass, field
from typing import Any, TypeVar

from omegaconf import DictConfig, OmegaConf, ValidationError

from linreg.errors import ConfigError

T = TypeVar("T")
MAX_SEED = 2**32 - 1  # numpy's generators take seeds up to this
FLOAT32_SMALLEST = 1.1754943508222875e-38  # the smallest normal 32-bit float

NORMALIZATIONS = ("none", "scale", "standardize", "minmax")
IMPUTATIONS = ("mean", "median", "most_frequent", "drop")  # what data.impute does with blank cells
Normalization = enum.Enum("Normalization", {name: name for name in NORMALIZATIONS})
Interval = enum.Enum("Interval", {name: name for name in ("epoch", "step")})
Split = enum.Enum("Split", {name: name for name in ("test", "val", "train")})
Impute = enum.Enum("Impute", {name: name for name in IMPUTATIONS})
DATE_PART_CHOICES = ("days", "year", "month", "weekday")  # what data.date_parts takes from a date
DatePart = enum.Enum("DatePart", {name: name for name in DATE_PART_CHOICES})
ExportFormat = enum.Enum("ExportFormat", {name: name for name in ("onnx", "torch")})
ConfigPrint = enum.Enum("ConfigPrint", {name: name for name in ("overrides", "full", "none")})


def is_number(value: Any) -> bool:
    """A setting that is a number (YAML's true/false and text are not, though Python counts True as 1)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def require(ok: bool, key: str, value: Any, what: str) -> None:
    """A range check: the message names the key, the value given and what it takes."""
    if not ok:
        raise ConfigError(f"{key}={value} is out of range: {what}.")


def check_fractions(val_fraction: float, test_fraction: float) -> None:
    """The held-out shares each in [0, 1) and leaving training rows (the data module checks them too)."""
    for key, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        require(0 <= value < 1, f"data.{key}", value, "at least 0 and below 1")
    if val_fraction + test_fraction >= 1:
        raise ConfigError(
            f"data.val_fraction + data.test_fraction = {val_fraction + test_fraction:g} leaves no training rows; "
            "keep their sum below 1."
        )


@dataclass
class DataSettings:
    val_fraction: float = 0.2
    test_fraction: float = 0.0
    batch_size: int | None = None
    shuffle: bool = True
    drop_last: bool = False
    num_workers: int = 0
    normalize: Normalization = Normalization.standardize
    scale: float = 0.1
    normalize_targets: bool = False
    seed: int = 42
    # data=csv and the built-in tables (a single column name is read as a list of one)
    path: str | None = None
    targets: list[str] | None = None
    features: list[str] | None = None
    exclude: list[str] | None = None
    categorical: list[str] | None = None
    dates: list[str] | None = None
    date_parts: list[DatePart] = field(default_factory=lambda: [DatePart.days, DatePart.month, DatePart.weekday])
    formula: str | None = None
    impute: Impute | None = None
    missing_indicator: bool = False
    min_category_count: int = 5
    max_categories: int = 50
    sep: str | None = None
    decimal: str = "."
    thousands: str | None = None
    stream: bool = False
    shuffle_buffer: int = 1_000_000
    # data=synthetic
    n_samples: int = 10000
    n_features: int = 8
    n_targets: int = 1
    noise: float = 0.1
    correlation: float = 0.0

    def __post_init__(self) -> None:
        check_fractions(self.val_fraction, self.test_fraction)
        require(0 <= self.seed <= MAX_SEED, "data.seed", self.seed, f"from 0 to {MAX_SEED}, e.g. 42")
        for key in ("targets", "features"):
            names = getattr(self, key) or []
            twice = sorted({name for name in names if names.count(name) > 1})
            if twice:
                raise ConfigError(f"data.{key} names {', '.join(twice)} more than once; name each column once.")
        if self.features == []:
            raise ConfigError(
                "data.features is empty; name the feature columns, e.g. data.features=[area,rooms], or leave it "
                "null (data.features=null) to use every column besides the targets and data.exclude."
            )
        require(
            self.batch_size is None or self.batch_size > 0,
            "data.batch_size",
            self.batch_size,
            "1 or more rows, or null for whole-split batches",
        )
        require(self.num_workers >= 0, "data.num_workers", self.num_workers, "0 or more processes")
        for key in ("n_samples", "n_features", "n_targets"):
            require(getattr(self, key) >= 1, f"data.{key}", getattr(self, key), "1 or more")
        require(self.noise >= 0, "data.noise", self.noise, "0 or more")
        require(0 <= self.correlation < 1, "data.correlation", self.correlation, "at least 0 and below 1")
        require(self.min_category_count >= 1, "data.min_category_count", self.min_category_count, "1 or more rows")
        require(self.max_categories >= 1, "data.max_categories", self.max_categories, "1 or more levels")
        parts = [getattr(part, "name", part) for part in self.date_parts]
        require(
            0 < len(parts) == len(set(parts)), "data.date_parts", parts, "one or more parts, each once, e.g. [year]"
        )
        for key in ("sep", "decimal", "thousands"):
            value = getattr(self, key)
            require(value is None or len(value) == 1, f"data.{key}", repr(value), "one character, e.g. ';'")
        require(self.thousands != self.decimal, "data.thousands", repr(self.thousands), "not data.decimal")
        require(self.shuffle_buffer >= 0, "data.shuffle_buffer", self.shuffle_buffer, "0 or more rows")
        require(
            FLOAT32_SMALLEST <= abs(self.scale) <= 1 / FLOAT32_SMALLEST,
            "data.scale",
            self.scale,
            "a non-zero factor between 1e-38 and 1e38 in size, whose inverse 32-bit numbers hold (e.g. 0.1)",
        )
        if self.stream:
            self.check_streaming()

    def check_streaming(self) -> None:
        """What a table read a row group at a time cannot do: each of these needs every row at hand."""
        impute = getattr(self.impute, "name", self.impute)
        cannot = [
            ("data.batch_size=null (a batch of every row)", self.batch_size is None),
            (f"data.num_workers={self.num_workers} (a thread of its own makes the batches)", self.num_workers > 0),
            (f"data.impute={impute} (only drop: a fill needs the whole column)", impute not in (None, "drop")),
            ("data.categorical or data.dates (encoded from whole columns)", bool(self.categorical or self.dates)),
            ("data.formula (its terms are computed from encoded columns)", bool(self.formula)),
        ]
        refused = [setting for setting, applies in cannot if applies]
        if refused:
            raise ConfigError(
                f"data.stream=true cannot take {'; '.join(refused)}. Change that setting, or read the table into "
                "memory with data.stream=false."
            )


@dataclass
class ModelSettings:
    """The keys of configs/model/linear.yaml this schema checks (a net's own settings are checked by its class)."""

    l2: float = 0.0
    l1: float = 0.0

    def __post_init__(self) -> None:
        for key in ("l2", "l1"):
            require(getattr(self, key) >= 0, f"model.{key}", getattr(self, key), "0 (no penalty) or more, e.g. 0.01")


@dataclass
class OptimizerSettings:
    lr: Any = "auto"  # a number, or auto (from the curvatures of the table's loss; sgd only)
    momentum: Any = None  # sgd, rmsprop: a number in [0, 1), or auto (with lr=auto)

    def __post_init__(self) -> None:
        if self.lr != "auto":
            if not is_number(self.lr):
                raise ConfigError(f"optimizer.lr={self.lr!r} is not valid: it takes a number or auto (e.g. 0.01).")
            require(self.lr > 0, "optimizer.lr", self.lr, "above 0, e.g. 0.01")
        if self.momentum not in (None, "auto"):
            if not is_number(self.momentum):
                raise ConfigError(
                    f"optimizer.momentum={self.momentum!r} is not valid: it takes a number or auto (e.g. 0.9)."
                )
            require(0 <= self.momentum < 1, "optimizer.momentum", self.momentum, "from 0 to below 1, e.g. 0.9")


@dataclass
class SchedulerSettings:
    interval: Interval = Interval.epoch
    frequency: int = 1
    monitor: str | None = None
    step_size: int | None = None  # step: epochs (or steps) between decays
    T_max: int | None = None  # cosine: epochs (or steps) of the half cosine

    def __post_init__(self) -> None:
        require(self.frequency >= 1, "scheduler.frequency", self.frequency, "1 or more")
        for key in ("step_size", "T_max"):
            value = getattr(self, key)
            require(value is None or value >= 1, f"scheduler.{key}", value, "1 or more")


@dataclass
class TrainerSettings:
    accelerator: str = "cpu"
    precision: str = "32-true"
    max_epochs: int = 1000
    max_steps: int = -1
    log_every_n_steps: int = 50
    check_val_every_n_epoch: int | None = 1
    accumulate_grad_batches: int = 1
    gradient_clip_val: float | None = None

    def __post_init__(self) -> None:
        require(
            self.max_steps == -1 or self.max_steps >= 1,
            "trainer.max_steps",
            self.max_steps,
            "1 or more, or -1 for no limit",
        )
        if self.max_steps == -1:
            require(
                self.max_epochs >= 1 or self.max_epochs == -1,
                "trainer.max_epochs",
                self.max_epochs,
                "train for at least one epoch (-1: no limit), or set trainer.max_steps",
            )
        require(self.log_every_n_steps >= 0, "trainer.log_every_n_steps", self.log_every_n_steps, "0 or more")
        every = self.check_val_every_n_epoch
        require(every is None or every >= 1, "trainer.check_val_every_n_epoch", every, "1 or more, or null (off)")
        require(
            self.accumulate_grad_batches >= 1,
            "trainer.accumulate_grad_batches",
            self.accumulate_grad_batches,
            "1 or more",
        )
        clip = self.gradient_clip_val
        require(clip is None or clip >= 0, "trainer.gradient_clip_val", clip, "0 or more, or null for no clipping")


@dataclass
class ConvergenceSettings:
    rtol: float = 1e-4

    def __post_init__(self) -> None:
        require(self.rtol > 0, "convergence.rtol", self.rtol, "above 0, e.g. 1e-4")


@dataclass
class CrossValidationSettings:
    folds: int = 0
    refit: bool = False

    def __post_init__(self) -> None:
        require(self.folds == 0 or self.folds >= 2, "cv.folds", self.folds, "0 (off) or 2 or more folds, e.g. 5")


@dataclass
class StatisticsSettings:
    ci: float = 0.95
    max_features: int = 2000

    def __post_init__(self) -> None:
        require(0 < self.ci < 1, "statistics.ci", self.ci, "between 0 and 1, e.g. 0.95")
        require(self.max_features >= 1, "statistics.max_features", self.max_features, "1 or more, e.g. 2000")


@dataclass
class TrainSettings:
    """configs/train.yaml: the keys train.py reads."""

    data: DataSettings = field(default_factory=DataSettings)
    model: ModelSettings = field(default_factory=ModelSettings)
    optimizer: OptimizerSettings = field(default_factory=OptimizerSettings)
    scheduler: SchedulerSettings | None = None
    trainer: TrainerSettings = field(default_factory=TrainerSettings)
    convergence: ConvergenceSettings = field(default_factory=ConvergenceSettings)
    statistics: StatisticsSettings = field(default_factory=StatisticsSettings)
    cv: CrossValidationSettings = field(default_factory=CrossValidationSettings)
    seed: int = 42
    tags: list[str] = field(default_factory=list)
    print_config: ConfigPrint = ConfigPrint.overrides
    ckpt_path: str | None = None
    allow_changed_data: bool = False
    optimized_metric: str = "val/loss"
    trusted_classes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        require(0 <= self.seed <= MAX_SEED, "seed", self.seed, f"from 0 to {MAX_SEED}, e.g. seed=42")


@dataclass
class EvalSettings:
    """configs/eval.yaml."""

    ckpt_path: str = "last"
    log_dir: str = "logs"
    split: Split | None = None  # None: test, or val, or train: the first the checkpoint's run has
    input: str | None = None
    trusted_classes: list[str] = field(default_factory=list)


@dataclass
class PredictSettings:
    """configs/predict.yaml."""

    input: str
    output: str
    ckpt_path: str = "last"
    log_dir: str = "logs"
    overwrite: bool = False
    interval: float | None = None
    sep: str | None = None
    decimal: str | None = None
    trusted_classes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        level = self.interval
        require(level is None or 0 < level < 1, "interval", level, "a level between 0 and 1, e.g. 0.95, or null")
        for key in ("sep", "decimal"):
            value = getattr(self, key)
            require(value is None or len(value) == 1, key, repr(value), "one character, e.g. ';', or null")


@dataclass
class ExportSettings:
    """configs/export.yaml."""

    output_dir: str
    ckpt_path: str = "last"
    log_dir: str = "logs"
    overwrite: bool = False
    formats: list[ExportFormat] = field(default_factory=lambda: [ExportFormat.onnx, ExportFormat.torch])
    trusted_classes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        require(bool(self.formats), "formats", "[]", "at least one of onnx, torch")


def checked(cfg: DictConfig, schema: type[T]) -> T:
    """The settings of `cfg` that `schema` names, type- and range-checked; a ConfigError names the first bad key."""
    values = pick(OmegaConf.to_container(cfg, resolve=True), schema, prefix="")
    refuse_infinities(values, prefix="")
    try:
        return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(schema), values))
    except ValidationError as error:
        raise ConfigError(explain(error, values, schema)) from None


def refuse_infinities(values: dict, prefix: str) -> None:
    """No setting the schema checks takes nan or ±inf (YAML reads `nan`, `inf` and `1e400` as floats)."""
    for key, value in values.items():
        if isinstance(value, dict):
            refuse_infinities(value, f"{prefix}{key}.")
        elif isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(
                f"{prefix}{key}={value} is not a finite number; give an ordinary number (nan and inf are no settings)."
            )


def pick(values: dict, schema: type, prefix: str) -> dict:
    """The keys of `values` that the dataclass `schema` declares (nested ones too); a missing `???` is an error."""
    picked = {}
    for spec in dataclasses.fields(schema):
        if spec.name not in values:
            continue
        value, key = values[spec.name], prefix + spec.name
        if value == "???":
            raise ConfigError(f"{key} is required: give it on the command line ({key}=...) or in a config file.")
        nested = dataclass_in(spec.type)
        if nested and isinstance(value, dict):
            value = pick(value, nested, key + ".")
        elif isinstance(value, str) and list in (
            typing.get_origin(spec.type),
            *map(typing.get_origin, typing.get_args(spec.type)),
        ):
            value = [value]  # data.targets=price means [price]
        picked[spec.name] = value
    return picked


def dataclass_in(annotation: Any) -> type | None:
    """The dataclass an annotation names (also inside `X | None`), if any."""
    for candidate in (annotation, *typing.get_args(annotation)):
        if dataclasses.is_dataclass(candidate):
            return candidate
    return None


def explain(error: ValidationError, values: dict, schema: type) -> str:
    """One sentence for a value of the wrong type: the key, the value, what it takes, and an example."""
    key = error.full_key.partition("[")[0]  # formats[0]: the list's key
    annotation, default, value = schema, None, values
    for part in key.split("."):
        spec = next(s for s in dataclasses.fields(dataclass_in(annotation)) if s.name == part)
        annotation = spec.type
        default = spec.default if spec.default is not dataclasses.MISSING else None
        value = value.get(part) if isinstance(value, dict) else None
    shown = repr(value) if isinstance(value, str) else value
    example = (
        f" (e.g. {key}={default.name if isinstance(default, enum.Enum) else default})" if default is not None else ""
    )
    return f"{key}={shown} is not valid: {key} takes {describe(annotation)}{example}."


def describe(annotation: Any) -> str:
    """A type in words: `int | None` is 'a whole number or null'."""
    arguments = [a for a in typing.get_args(annotation) if a is not type(None)]
    if arguments and len(arguments) < len(typing.get_args(annotation)):
        return describe(arguments[0]) + " or null"
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return "one of " + ", ".join(member.name for member in annotation)
    origin = typing.get_origin(annotation)
    if origin is list:
        (item,) = typing.get_args(annotation)
        if isinstance(item, type) and issubclass(item, enum.Enum):
            return "a list of " + ", ".join(member.name for member in item)
        return "a list such as [a,b]"
    words = {int: "a whole number", float: "a number", bool: "true or false", str: "a text"}
    return words.get(annotation, str(annotation))
