"""The LightningDataModule: a table read once, split, normalized on its training rows, served in batches.

A batch is gathered from the table's tensors with one index tensor: the batch sampler names a batch's
rows and `SplitRows.__getitems__` (PyTorch's batched-fetch protocol) takes them in one gather, instead
of the usual `__getitem__` per row and collate. The pieces are PyTorch's usual ones (a sampler with
`set_epoch`, a `BatchSampler`, a map-style dataset), so Lightning counts, limits and re-seeds them as
its docs say.
With `data.stream=true` a Parquet table is not read into memory: its splits are `StreamedSplit`s, read a row group
at a time (stream.py), behind the same hooks.
"""

import copy
from collections.abc import Iterator, Sequence
from typing import Any

import lightning as L
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import BatchSampler, DataLoader, Dataset, Sampler

from linreg.config import check_fractions
from linreg.data.columns import (
    DATE_PARTS,
    RELEASE_ROWS,
    ColumnSettings,
    as_list,
    choose_columns,
    encode_batches,
    feature_names,
    fit_plan,
    leave_out_uninformative,
    numeric_plan,
    target_names,
    usable_rows,
)
from linreg.data.formats import (
    ParquetBatches,
    TextFormat,
    checked_file,
    is_parquet,
    read_table_file,
    resolve_path,
)
from linreg.data.formulas import read_formula
from linreg.data.read import PRECISE_CELLS, Table, make_synthetic, warn_of_float32_rounding
from linreg.data.stream import (
    EpochBatches,
    GroupOrder,
    Loading,
    StreamedRows,
    StreamedSplit,
    StreamedTable,
    batch_count,
    survey_everywhere,
)
from linreg.errors import ConfigError
from linreg.least_squares import TrainingSums
from linreg.normalize import Normalizer

SPLITS = ("train", "val", "test")


class SplitRows(Dataset):
    """One split of the table as a map-style dataset; the DataLoader asks it for a whole batch at once."""

    def __init__(self, table: Table) -> None:
        self.table = table

    def __len__(self) -> int:
        return len(self.table)

    def __getitem__(self, position: int) -> tuple[Tensor, Tensor]:
        features, targets = self.__getitems__([position])
        return features[0], targets[0]

    def __getitems__(self, positions: Tensor | list[int] | slice) -> tuple[Tensor, Tensor]:
        """The rows at `positions`: a gather, or a view where they are a range of a laid-out table."""
        table = self.table
        if not isinstance(positions, slice):
            positions = torch.as_tensor(positions, device=table.all_features.device)
        rows = table.rows_at(positions)
        return table.all_features[rows], table.all_targets[rows]


def gathered(batch: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
    """The DataLoader's collate step: `SplitRows` already returns the batch as two tensors."""
    return batch


class SeededOrder(Sampler[int]):
    """The positions of a split's rows in an order fixed by (seed, epoch), made as one tensor.

    Lightning calls `set_epoch` before every epoch, so the order does not depend on the global
    random state: every DDP rank sees the same permutation, and a resumed run replays the order it
    would have had.
    """

    def __init__(self, n_rows: int, shuffle: bool, seed: int, device: torch.device | str = "cpu") -> None:
        self.n_rows, self.shuffle, self.seed = n_rows, shuffle, seed
        self.device = torch.device(device)  # where the table is: positions made there need no copy per batch
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def order(self) -> Tensor:
        if not self.shuffle:
            return torch.arange(self.n_rows, device=self.device)
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        return torch.randperm(self.n_rows, generator=generator).to(self.device)

    def __iter__(self) -> Iterator[int]:
        return iter(self.order().tolist())

    def __len__(self) -> int:
        return self.n_rows


class ShuffledBatches(BatchSampler):
    """Cuts the sampler's order into batches of tensors, each split evenly over `world_size` DDP ranks.

    `data.batch_size` is the global batch: rank r takes every world_size-th row of each batch. Batches in
    file order are ranges (slices), and so is a batch of the whole split even where the rows are shuffled:
    a loss over a batch does not depend on the order of its rows, and a range of a laid-out table is a view
    of its columns, where a shuffled order would copy them every epoch.
    """

    def __init__(
        self, sampler: Sampler[int], batch_size: int, drop_last: bool, rank: int = 0, world_size: int = 1
    ) -> None:
        super().__init__(sampler, batch_size, drop_last)
        self.rank, self.world_size = rank, world_size

    def __len__(self) -> int:
        return batch_count(len(self.sampler), self.batch_size, self.drop_last, self.world_size)

    def __iter__(self) -> Iterator[Tensor | slice]:
        sampler, size = self.sampler, self.batch_size
        if isinstance(sampler, SeededOrder) and (not sampler.shuffle or size >= len(sampler)):
            for start in range(0, len(self) * size, size):
                yield slice(start + self.rank, min(start + size, len(sampler)), self.world_size)
            return
        order = sampler.order() if isinstance(sampler, SeededOrder) else torch.as_tensor(list(sampler))
        for start in range(0, len(self) * size, size):
            yield order[start : start + size][self.rank :: self.world_size]


class TabularDataModule(L.LightningDataModule):
    """Reads the table in `setup`, splits it, fits the normalization on the training split, and serves batches.

    Subclasses say where the rows come from (`read_table`); every setting is saved in checkpoints
    (`save_hyperparameters`), so eval.py can rebuild the same splits without the run's config.
    """

    not_saved: tuple[str, ...] = ()  # arguments that are not plain values, left out of the checkpoints
    lays_out = True  # whether a large table it reads is laid out split by split (lay_out); not a table it is given

    def __init__(
        self,
        val_fraction: float = 0.2,
        test_fraction: float = 0.0,
        batch_size: int | None = None,
        shuffle: bool = True,
        drop_last: bool = False,
        num_workers: int = 0,
        normalize: str = "standardize",
        scale: float = 0.1,
        normalize_targets: bool = False,
        seed: int = 42,
        folds: int = 0,
        fold: int | None = None,
    ) -> None:
        """`folds` and `fold` choose a cross-validation fold instead of `val_fraction` (see split_positions)."""
        super().__init__()
        self.save_hyperparameters(ignore=self.not_saved, logger=False)  # (also the subclass's own arguments)
        self.train: Table | StreamedSplit | None = None
        self.val: Table | StreamedSplit | None = None
        self.test: Table | StreamedSplit | None = None
        self.feature_normalizer: Normalizer | None = None
        self.target_normalizer: Normalizer | None = None
        self.columns: dict | None = None  # how a file's columns became the features (None: they were numbers)
        self.table: Table | None = None  # every row read, which the splits are views of
        self.rows_digest: str | None = None  # a fingerprint of the rows read and of which train (state_dict)
        self.training_sums: TrainingSums | None = None
        self.training_dtype = torch.float32  # float64 for trainer.precision=64-true (assembly.build_datamodule)
        self.read_sums: TrainingSums | None = None  # a large table's training sums, gathered in float64 as read

    @property
    def name(self) -> str:
        """How runs and summaries name this table."""
        return type(self).__name__

    @property
    def holds_out_validation(self) -> bool:
        """Whether there is a validation split, known from the settings before any row is read (a split with a
        fraction above 0 gets at least one row, or setup says why not)."""
        settings = self.hparams
        return settings.fold is not None if settings.folds else settings.val_fraction > 0

    def read_table(self) -> Table:
        raise NotImplementedError(f"{type(self).__name__} must say where its rows come from (read_table).")

    def setup(self, stage: str) -> None:
        """Read, split and fit the normalization once (train.py calls it before building the model, which
        is sized by the table); on every call, move the table to the trainer's device."""
        if self.train is None:
            self._read_and_split()
        device = self.trainer.strategy.root_device if self.trainer else torch.device("cpu")
        in_memory = isinstance(self.train, Table)  # (a streamed table's batches are moved by Lightning, one by one)
        if in_memory and self.train.all_features.device != device:  # one copy of the columns, shared by the splits
            features, targets = self.train.all_features.to(device), self.train.all_targets.to(device)
            self.train, self.val, self.test = (part.on(features, targets) for part in (self.train, self.val, self.test))

    def _read_and_split(self) -> None:
        self.table = self.read_table()
        if self.training_dtype == torch.float64:  # (the values as written where the table kept them)
            features, targets = self.table.as_written or (self.table.all_features, self.table.all_targets)
            self.table.all_features, self.table.all_targets = features.double(), targets.double()
        self._split(self.table)

    def with_fold(self, fold: int | None) -> "TabularDataModule":
        """This data module on another cross-validation fold (None: all the rows outside the test split), sharing
        the rows read: each fold is split and normalized on its own training rows, and its settings (saved in
        checkpoints) name the fold, so eval.py rebuilds it."""
        other = copy.copy(self)
        # Settings of its own (a shallow copy would share them): as save_hyperparameters sets them in __init__.
        other._set_hparams({**self.hparams, "fold": fold})
        other._hparams_initial = copy.deepcopy(other.hparams)
        other._split(self.table)
        return other

    def _split(self, table: Table) -> None:
        settings = self.hparams
        self.train, self.val, self.test = split(
            table, settings.val_fraction, settings.test_fraction, settings.seed, settings.folds, settings.fold
        )
        # One pass over the training rows: the normalization's statistics and the least-squares sums (gathered
        # already as a large table was read, for the training rows of every split but a cross-validation fold's).
        by_reading = self.read_sums is not None and settings.fold is None
        self.training_sums = self.read_sums if by_reading else TrainingSums.of(self.train)
        self.rows_digest = self.train.digest()  # (here, with the data, not in the first checkpoint's save)
        self.lay_out(table)
        self.fit_normalization()

    def lay_out(self, table: Table) -> None:
        """Copy the table's rows into new columns split by split, so that each split is a range of them: a batch of
        a whole split is then a view of the columns, not a copy of them every epoch (the copy is made once, here,
        and the file's order is kept in `file_rows`). Only where that pays: a large table that this module read
        (not one it was given), trained in batches of its whole training split, with rows held out, and not laid
        out already (a cross-validation fold's splits are other rows of the one laid out for the first)."""
        batch_size = self.hparams.batch_size
        whole_batches = batch_size is None or batch_size >= len(self.train)
        large = len(table) * (len(table.feature_names) + len(table.target_names)) > PRECISE_CELLS
        if not (self.lays_out and whole_batches and large) or table.file_rows is not None or self.train is table:
            return
        parts = (self.train, self.val, self.test)
        self.table = table.laid_out(torch.cat([part.row_numbers() for part in parts]))
        self.train, self.val, self.test = self.table.ranges([len(part) for part in parts])

    def fit_normalization(self, centered: bool = True) -> None:
        """Fit the normalizers on the training rows' sums (not `centered`: scales only, for a model through the
        origin, model.net.bias=false); a target that never varies is refused."""
        settings, table = self.hparams, self.train
        low, high = self.training_sums.target_range
        constant = [
            f"{name} ({value:g})"
            for name, value, same in zip(table.target_names, low.tolist(), (low == high).tolist(), strict=True)
            if same
        ]
        rows = len(table)
        if rows < 2:
            held_out = len(self.val) + len(self.test)
            raise ConfigError(
                f"The training split has {rows} of the table's {rows + held_out} rows ({held_out} held out for "
                f"validation and testing: data.val_fraction={settings.val_fraction}, data.test_fraction="
                f"{settings.test_fraction}); a line needs at least 2. "
                "Give the table more rows, or hold fewer out (data.val_fraction=0)."
            )
        if constant:
            raise ConfigError(
                f"Target column(s) {', '.join(constant)} hold one value in every training row: there is nothing to "
                "fit. Check data.targets, or the file."
            )
        self.feature_normalizer = Normalizer(len(table.feature_names))
        self.feature_normalizer.fit(
            settings.normalize, self.training_sums.statistics(), settings.scale, table.feature_names, centered
        )
        self.target_normalizer = Normalizer(len(table.target_names))
        if settings.normalize_targets:
            statistics = self.training_sums.statistics(of_targets=True)
            self.target_normalizer.fit(settings.normalize, statistics, settings.scale, table.target_names, centered)

    @property
    def feature_names(self) -> list[str]:
        return self.train.feature_names

    @property
    def target_names(self) -> list[str]:
        return self.train.target_names

    def state_dict(self) -> dict[str, int | str]:
        """The split sizes and a digest of the rows, saved in checkpoints: eval.py checks that the splits it
        rebuilds are the same, train.py that a resumed run goes on with the rows it started with."""
        if self.train is None:
            return {}
        return {**{f"{part}_rows": len(getattr(self, part)) for part in SPLITS}, "rows_digest": self.rows_digest}

    def has_rows_of(self, saved: Any) -> bool:
        """Whether a checkpoint's record of the rows (its copy of state_dict) is this module's: the same split
        sizes and digest (a key an older checkpoint lacks is not compared)."""
        now = self.state_dict()
        return isinstance(saved, dict) and all(now.get(key) == value for key, value in saved.items())

    @property
    def normalizers(self) -> dict[str, Normalizer]:
        """The normalizers, by the names the model's state gives them (`feature_normalizer.factor`, ...)."""
        return {"feature_normalizer": self.feature_normalizer, "target_normalizer": self.target_normalizer}

    def adopt_normalization(self, state: dict[str, Tensor]) -> None:
        """Normalize with the statistics of a checkpoint's model (`feature_normalizer.factor`, ...) instead of
        this data's own: a resumed run goes on in the space its weights were trained in."""
        for name, normalizer in self.normalizers.items():
            prefix = f"{name}."
            normalizer.load_state_dict(
                {key[len(prefix) :]: value for key, value in state.items() if key.startswith(prefix)}
            )

    def train_dataloader(self) -> DataLoader:
        return self.loader("train")

    def val_dataloader(self) -> DataLoader | list:
        return self.loader("val")

    def test_dataloader(self) -> DataLoader | list:
        return self.loader("test")

    def loader(self, part: str) -> DataLoader | list:
        """The batches of one split; training batches are shuffled (`data.shuffle`), the others in file order.

        An empty split gives no loader at all, so Lightning runs no such loop.
        """
        table: Table | StreamedSplit = getattr(self, part)
        if not len(table):
            return []
        training, trainer = part == "train", self.trainer
        # Like Lightning's own loaders, overfit_batches trains on the same first batches every epoch.
        overfitting = trainer is not None and trainer.overfit_batches > 0
        shuffle = training and self.hparams.shuffle and not overfitting
        drop_last = training and self.hparams.drop_last
        rank, world_size = (trainer.global_rank, trainer.world_size) if trainer else (0, 1)
        if isinstance(table, StreamedSplit):
            device = trainer.strategy.root_device if trainer else torch.device("cpu")
            loading = Loading(
                self.hparams.batch_size,
                shuffle,
                drop_last,
                self.hparams.shuffle_buffer,
                rank,
                world_size,
                pin=device.type == "cuda",
            )
            count = batch_count(len(table), loading.batch_size, drop_last, world_size)
            batches = EpochBatches(GroupOrder(table, shuffle), count)
            return DataLoader(StreamedRows(table, loading), batch_sampler=batches, collate_fn=gathered)
        order = SeededOrder(len(table), shuffle, self.hparams.seed, device=table.all_features.device)
        batches = ShuffledBatches(order, self.hparams.batch_size or len(table), drop_last, rank, world_size)
        return DataLoader(
            SplitRows(table), batch_sampler=batches, collate_fn=gathered, num_workers=self.hparams.num_workers
        )

    def check_batch_split(self, world_size: int) -> None:
        """Every process takes a part of every training batch (in memory and streamed, equal parts ±1 row, whose
        losses the model weights by their rows), so a batch needs a row for each process."""
        batch_size = self.hparams.batch_size or len(self.train)
        if batch_size < world_size:
            setting = (
                f"data.batch_size={batch_size}"
                if self.hparams.batch_size
                else f"data.batch_size=null ({batch_size} rows)"
            )
            raise ConfigError(
                f"{setting} is smaller than the {world_size} processes, and each takes a part of every batch; "
                f"choose data.batch_size={world_size} or more."
            )


class CsvDataModule(TabularDataModule):
    """The columns of a table file (CSV, TSV, compressed, Parquet): `data=csv` and the built-in tables.

    Text, true/false, date and blank cells become numbers by a plan fitted on the training split
    (columns.py); the plan is kept in `columns` and goes into checkpoints with the model.
    """

    def __init__(
        self,
        path: str,
        targets: str | Sequence[str] | None = None,
        features: str | Sequence[str] | None = None,
        exclude: str | Sequence[str] | None = None,
        categorical: str | Sequence[str] | None = None,
        dates: str | Sequence[str] | None = None,
        impute: str | None = None,
        missing_indicator: bool = False,
        min_category_count: int = 5,
        max_categories: int = 50,
        date_parts: Sequence[str] = DATE_PARTS,
        formula: str | None = None,
        sep: str | None = None,
        decimal: str = ".",
        thousands: str | None = None,
        stream: bool = False,
        shuffle_buffer: int = 1_000_000,
        **settings,
    ) -> None:
        """`stream`: read a Parquet file or directory a row group at a time (stream.py) instead of into memory."""
        super().__init__(**settings)

    @property
    def name(self) -> str:
        return resolve_path(self.hparams.path).name.partition(".")[0]

    def _read_and_split(self) -> None:
        if not self.hparams.stream:
            return super()._read_and_split()
        s, columns = self.hparams, self.column_settings()
        if s.folds:
            raise ConfigError(
                "cv.folds needs the table in memory, and data.stream=true reads it a row group at a time; judge a "
                "streamed table on a held-out split instead (data.val_fraction, data.test_fraction)."
            )
        file = checked_file(s.path, "data.path")
        if not is_parquet(file):
            raise ConfigError(
                f"data.stream=true reads Parquet files, and data.path={s.path} is not one (.parquet, .pq, or a "
                "directory of .parquet files); convert it a block at a time "
                '(docs/scaling.md: "Tables larger than memory") or read it into memory (data.stream=false).'
            )
        table = StreamedTable.open(
            file,
            list(columns.targets),
            columns.features,
            list(columns.exclude),
            (s.seed, s.val_fraction, s.test_fraction),
            drop_blank=s.impute == "drop",
        )
        survey = survey_everywhere(table)
        self.train, self.val, self.test = (
            StreamedSplit(table, part, survey.counts[:, part], survey.samples[part], survey.equations(part))
            for part in range(3)
        )
        for part, fraction in (("train", 1.0), ("val", s.val_fraction), ("test", s.test_fraction)):
            if fraction > 0 and not len(getattr(self, part)):
                raise ConfigError(
                    f"data.path={s.path} has {survey.counts.sum()} usable rows, and none fell in the {part} split; "
                    "a streamed table's splits are drawn row by row: give it more rows, or change the fractions."
                )
        self.columns = numeric_plan(table.feature_names, table.target_names)
        self.training_sums, self.rows_digest = survey.sums, survey.digest()
        self.fit_normalization()

    def parquet_in_batches(self, settings: ColumnSettings) -> tuple[ParquetBatches, dict[str, str], list[str]] | None:
        """A large Parquet file (over PRECISE_CELLS values) to read a batch of rows at a time, with its feature
        kinds and targets; None where it must be read whole: its columns are not all numbers or true/false
        without blanks, or a setting fits something to the whole column (data.impute, a formula)."""
        fits = settings.formula or settings.impute not in (None, "drop") or settings.missing_indicator
        parquet = None if fits or self.training_dtype != torch.float32 else ParquetBatches.open(self.hparams.path)
        if parquet is None:
            return None
        try:  # (on its first rows: settings that fit the whole file fail or pass as they would on the whole table)
            kinds, targets = choose_columns(parquet.first_rows, settings, self.hparams.path)
        except ConfigError:
            return None  # (the whole table then says what is wrong, or reads well)
        columns = [*kinds, *targets]
        if parquet.rows * len(columns) <= PRECISE_CELLS or not parquet.holds_numbers_without_blanks(columns):
            return None
        return parquet, kinds, targets

    def column_settings(self) -> ColumnSettings:
        s = self.hparams
        formula = read_formula(s.formula) if s.formula else None
        targets, features = as_list(s.targets), as_list(s.features) or None
        if formula:
            targets, features = formula_columns(formula, targets, features)
        return ColumnSettings(
            targets=targets,
            features=features,
            formula=formula,
            exclude=as_list(s.exclude),
            categorical=as_list(s.categorical) + (formula["categorical"] if formula else []),
            dates=as_list(s.dates),
            impute=s.impute,
            missing_indicator=s.missing_indicator,
            min_category_count=s.min_category_count,
            max_categories=s.max_categories,
            date_parts=list(s.date_parts),
            text=TextFormat(s.sep, s.decimal, s.thousands),
        )

    def read_table(self) -> Table:
        s, settings = self.hparams, self.column_settings()
        in_batches = self.parquet_in_batches(settings)
        if in_batches is not None:  # (no whole read: its columns need nothing of the whole file first)
            parquet, kinds, targets = in_batches
            n_rows, names = parquet.rows, parquet.first_rows.column_names
        else:
            raw = read_table_file(s.path, settings.text, as_text=settings.categorical)
            kinds, targets = choose_columns(raw, settings, s.path)
            raw = usable_rows(raw, kinds, targets, settings, s.path)
            n_rows, names = raw.num_rows, raw.column_names
        # The plan learns from the training rows of the split that setup makes next (same rows, same seed).
        # (Cross-validation folds share the plan: it learns from all the rows outside the test split.)
        positions = split_positions(n_rows, s.val_fraction, s.test_fraction, s.seed, s.folds, None)
        train_rows = None if positions is None else positions[0].numpy()
        if in_batches is not None:
            self.columns = fit_plan(parquet.first_rows, kinds, targets, settings, None, s.path, parquet.column)
            batches = parquet.batches([*kinds, *targets], RELEASE_ROWS)
        else:
            self.columns = fit_plan(raw, kinds, targets, settings, train_rows, s.path)
            batches = raw.to_batches()
            del raw  # the batches are now the only copy of the cells: encoding frees each once it is written
        precise = n_rows * (len(feature_names(self.columns)) + len(targets)) <= PRECISE_CELLS
        precise |= self.training_dtype == torch.float64
        training = None  # (a table too large to keep in float64: its training rows' sums are gathered as it is read)
        if not precise:
            training = np.zeros(n_rows, dtype=bool)
            training[slice(None) if train_rows is None else train_rows] = True
        dtype = np.float64 if precise else np.float32
        encoded = encode_batches(self.columns, batches, names, s.path, dtype=dtype, training=training, n_rows=n_rows)
        encoded_names = feature_names(self.columns)
        features = leave_out_uninformative(self.columns, encoded.features, train_rows, s.path)
        if encoded.training_sums is not None:  # (the same features as the table: those left out, out)
            left_out = set(self.columns.get("drop", []))
            self.read_sums = encoded.training_sums.keeping([name not in left_out for name in encoded_names])
        if not feature_names(self.columns):
            raise ConfigError(
                f"No feature of {s.path} is left to train on: each of its feature columns "
                f"({', '.join(kinds)}) gives none (see the warnings above)."
            )
        columns = torch.from_numpy(features), torch.from_numpy(encoded.targets)
        trained_on = columns if self.training_dtype == torch.float64 else tuple(c.float() for c in columns)
        table = Table(*trained_on, feature_names(self.columns), target_names(self.columns))
        if precise:
            table.as_written = columns
            if self.training_dtype == torch.float32:
                warn_of_float32_rounding(table, train_rows, s.path)
        return table


def formula_columns(formula: dict, targets: list[str], features: list[str] | None) -> tuple[list[str], list[str]]:
    """The target and feature columns data.formula names (data.targets may repeat its targets; data.features
    must be left to it)."""
    named = [target["column"] for target in formula["targets"]]
    if targets and targets != named:
        raise ConfigError(
            f"data.targets={targets} and data.formula={formula['text']!r} name different targets ({', '.join(named)}); "
            "the formula names them: leave data.targets out (data.targets=null)."
        )
    if features:
        raise ConfigError(
            f"data.features and data.formula={formula['text']!r} both name the features; the formula's terms are "
            "the features: leave data.features out (data.features=null), or data.formula (data.formula=null)."
        )
    columns = [factor["column"] for term in formula["terms"] for factor in term]
    return named, list(dict.fromkeys(columns))


class SyntheticDataModule(TabularDataModule):
    """Generated rows whose true weights are kept in `true_weight` and `true_bias`, to check what a fit recovers."""

    def __init__(
        self,
        n_samples: int,
        n_features: int,
        n_targets: int = 1,
        noise: float = 0.1,
        correlation: float = 0.0,
        **settings,
    ) -> None:
        super().__init__(**settings)
        self.true_weight: Tensor | None = None
        self.true_bias: Tensor | None = None

    @property
    def name(self) -> str:
        return "synthetic"

    def read_table(self) -> Table:
        settings = self.hparams
        table, self.true_weight, self.true_bias = make_synthetic(
            settings.n_samples,
            settings.n_features,
            settings.n_targets,
            settings.noise,
            settings.seed,
            settings.correlation,
        )
        return table


class InMemoryDataModule(TabularDataModule):
    """A table already in memory (a notebook's tensors, say); its checkpoints keep the settings, not the rows."""

    not_saved = ("table",)
    lays_out = False  # (a copy of a large table would double the memory its owner already holds)

    def __init__(self, table: Table, **settings) -> None:
        super().__init__(**settings)
        self.table = table

    def read_table(self) -> Table:
        return self.table


# What eval.py may rebuild from a checkpoint: Lightning files a data module's state under its class name.
DATA_MODULES = {cls.__qualname__: cls for cls in (CsvDataModule, SyntheticDataModule)}


def split_positions(
    n_rows: int, val_fraction: float, test_fraction: float, seed: int, folds: int = 0, fold: int | None = None
) -> tuple[Tensor, Tensor, Tensor] | None:
    """The row positions of the train, validation and test splits, shuffled with `seed` (None: no rows held out).

    With `folds` (cross-validation, cv.folds) the rows outside the test split are cut into that many folds of
    the same shuffled order: `fold` is the validation split, the others train; `fold` None trains on them all.
    """
    if folds:
        return fold_positions(n_rows, test_fraction, seed, folds, fold)
    check_fractions(val_fraction, test_fraction)
    n_val, n_test = (max(1, round(n_rows * f)) if f > 0 else 0 for f in (val_fraction, test_fraction))
    if n_rows - n_val - n_test < 1:
        raise ConfigError(
            f"The table has {n_rows} rows: too few for data.val_fraction={val_fraction} and "
            f"data.test_fraction={test_fraction}. Lower the fractions or add rows."
        )
    if n_val == n_test == 0:
        return None
    order = torch.randperm(n_rows, generator=torch.Generator().manual_seed(seed))
    n_train = n_rows - n_val - n_test
    return order[:n_train], order[n_train : n_train + n_val], order[n_train + n_val :]


def fold_positions(
    n_rows: int, test_fraction: float, seed: int, folds: int, fold: int | None
) -> tuple[Tensor, Tensor, Tensor]:
    """The positions of one cross-validation fold (see split_positions); the test rows as without folds."""
    check_fractions(0.0, test_fraction)
    n_test = max(1, round(n_rows * test_fraction)) if test_fraction > 0 else 0
    if n_rows - n_test < folds:
        raise ConfigError(
            f"cv.folds={folds} needs at least {folds} rows outside the test split, and the table has "
            f"{n_rows - n_test}; use fewer folds or a smaller data.test_fraction."
        )
    order = torch.randperm(n_rows, generator=torch.Generator().manual_seed(seed))
    parts = list(torch.tensor_split(order[: n_rows - n_test], folds))
    validation = parts.pop(fold) if fold is not None else order[:0]
    return torch.cat(parts), validation, order[n_rows - n_test :]


def split(
    table: Table, val_fraction: float, test_fraction: float, seed: int, folds: int = 0, fold: int | None = None
) -> tuple[Table, Table, Table]:
    """The train, validation and test tables: views of `table` by the rows `split_positions` gives (ranges of a
    table laid out in these splits: TabularDataModule.lay_out)."""
    positions = split_positions(len(table), val_fraction, test_fraction, seed, folds, fold)
    if positions is None:
        return table, table.select(torch.arange(0)), table.select(torch.arange(0))
    if table.file_rows is not None:
        if torch.equal(torch.cat(positions), table.file_rows):
            return table.ranges([len(rows) for rows in positions])
        rows_of_file = table.rows_of_file()  # (another split: a cross-validation fold's)
        positions = tuple(rows_of_file[rows] for rows in positions)
    return tuple(table.select(rows) for rows in positions)
