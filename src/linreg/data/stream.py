"""Tables larger than memory (`data.stream=true`): a Parquet file, or a directory of them, read a row group at a time.

- **Split.** A row's split is drawn from its row group's own random numbers, seeded by (data.seed, the group's
  number in file order): no list of positions is kept, and a row lands in the same split on every pass and in
  every process. The splits hold about data.val_fraction and data.test_fraction of the rows.
- **Survey.** One pass (in `setup`) counts each group's rows of each split and gathers the training rows' sums
  (the normalization's statistics and the least-squares normal equations, least_squares.TrainingSums), the
  normal equations of the validation and test rows (the fit path's validation gap) and a uniform sample of rows
  for the pictures. Under DDP each process surveys every world_size-th group and the
  processes exchange what they gathered, so every one of them holds the numbers one process would.
- **Epoch order**, fixed by (data.seed, epoch): the row groups are shuffled, their training rows in that order
  are one sequence, and each process takes a contiguous share of it, sized so that every process takes the
  same number of batches and every row is used once (a last global batch with fewer rows than processes is
  dropped, as in memory). Each process's rows pass through a shuffle buffer of data.shuffle_buffer rows (seeded
  by seed, epoch and rank) and are cut into batches of its part of data.batch_size (equal parts, ±1 row), by a
  thread ahead of the training step.
- **Memory**: the buffer, the row group being read and the batches made ahead; none of it grows with the number
  of rows. On a GPU the batches are made in pinned memory, so Lightning's copy to the device does not block the
  step.
"""

import contextlib
import hashlib
import itertools
import math
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from torch import Tensor
from torch.utils.data import Dataset, Sampler

from linreg.data.columns import check_names_exist
from linreg.data.read import Table
from linreg.errors import ConfigError
from linreg.least_squares import NormalEquations, TrainingSums
from linreg.normalize import CHUNK_ROWS, Normalizer

PARTS = {"train": 0, "val": 1, "test": 2}
SAMPLE_ROWS = 5000  # rows of each split kept for the pictures
END = object()  # the end of the items a thread makes


@dataclass(frozen=True)
class RowGroup:
    file: Path
    index: int  # within its file
    rows: int


def row_groups(path: Path, setting: str) -> list[RowGroup]:
    """Every row group of the file, or of the directory's .parquet files in the order of their paths."""
    files = sorted(path.glob("**/*.parquet")) if path.is_dir() else [path]
    groups = []
    for file in files:
        try:
            metadata = pq.ParquetFile(file).metadata
        except (pa.ArrowInvalid, OSError) as error:
            raise ConfigError(f"{setting}: {file} could not be read as a Parquet file ({error}).") from None
        groups += [RowGroup(file, i, metadata.row_group(i).num_rows) for i in range(metadata.num_row_groups)]
    return [group for group in groups if group.rows]


def numeric_column_types(schema: pa.Schema, columns: Sequence[str], file: Path, setting: str) -> None:
    """Streamed columns must be numbers or true/false: encoding text or dates needs the whole column first."""
    for name in columns:
        kind = schema.field(name).type
        if not (pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind)):
            held = "text" if pa.types.is_string(kind) or pa.types.is_large_string(kind) else f"values of type {kind}"
            if pa.types.is_temporal(kind):
                held = "dates or times"
            raise ConfigError(
                f"Column {name} of {file} holds {held}, and data.stream=true reads number and true/false columns "
                f"only; leave it out (data.exclude=[{name}]), or read the table into memory (data.stream=false), "
                "which encodes text and dates."
            )


@dataclass
class StreamedTable:
    """The row groups of a Parquet file or directory, each read on demand as float32 tensors with its rows' split."""

    path: str
    groups: list[RowGroup]
    feature_names: list[str]
    target_names: list[str]
    seed: int
    val_fraction: float
    test_fraction: float
    drop_blank: bool  # data.impute=drop: rows with a blank cell are left out (otherwise they are an error)

    @classmethod
    def open(
        cls,
        path: Path,
        targets: list[str],
        features: list[str] | None,
        exclude: list[str],
        split: tuple[int, float, float],
        drop_blank: bool,
        setting: str = "data.path",
    ) -> "StreamedTable":
        groups = row_groups(path, setting)
        if not groups:
            raise ConfigError(f"{setting}={path} holds no rows.")
        schema = pq.ParquetFile(groups[0].file).schema_arrow
        check_names_exist(
            {"data.targets": targets, "data.features": features or [], "data.exclude": exclude}, schema.names, str(path)
        )
        chosen = [name for name in features or schema.names if name not in targets and name not in exclude]
        if not chosen:
            raise ConfigError(f"{path} has no feature column left besides the targets and data.exclude; keep one.")
        numeric_column_types(schema, [*chosen, *targets], groups[0].file, setting)
        for file in dict.fromkeys(group.file for group in groups):
            names = pq.ParquetFile(file).schema_arrow.names
            missing = [name for name in [*chosen, *targets] if name not in names]
            if missing:
                raise ConfigError(
                    f"{file} lacks column(s) {', '.join(missing)} that {groups[0].file} has; every file of "
                    f"{setting}={path} needs the columns trained on."
                )
        return cls(str(path), groups, chosen, list(targets), *split, drop_blank)

    def read(self, number: int, as_written: bool = False) -> tuple[Tensor, Tensor, np.ndarray, np.ndarray]:
        """Group `number`'s usable rows: features, targets, each row's split (0 train, 1 val, 2 test) and the
        uniform draw it came from. Float32 for training; float64 `as_written` for the passes that gather sums."""
        group = self.groups[number]
        columns = [*self.feature_names, *self.target_names]
        # Opened for each group: an open Parquet reader keeps buffers (about 20 MB) of what it read last.
        with pq.ParquetFile(group.file) as file:
            cells = file.read_row_group(group.index, columns=columns)
        dtype = pa.float64() if as_written else pa.float32()
        values = np.empty((cells.num_rows, len(columns)), dtype=dtype.to_pandas_dtype())
        for j, column in enumerate(cells.columns):
            values[:, j] = column.cast(dtype).to_numpy()  # (a blank cell becomes NaN)
        draws = np.random.default_rng([self.seed, number]).random(group.rows)
        parts = (draws >= 1 - self.val_fraction - self.test_fraction).astype(np.int8) + (
            draws >= 1 - self.test_fraction
        )
        blank = np.isnan(values).any(axis=1)
        if blank.any():
            if not self.drop_blank:
                row, column = np.argwhere(np.isnan(values))[0]
                raise ConfigError(
                    f"{group.file} has a blank cell in column {columns[column]}, row {row + 1} of its row group "
                    f"{group.index}. With data.stream=true such rows can only be left out (data.impute=drop): "
                    "filling them needs the whole column first (data.stream=false)."
                )
            values, parts, draws = values[~blank], parts[~blank], draws[~blank]
        tensor = torch.from_numpy(values)
        n_features = len(self.feature_names)
        return tensor[:, :n_features], tensor[:, n_features:], parts, draws


def in_float64_pieces(features: Tensor, targets: Tensor, rows: int) -> Iterator[tuple[Tensor, Tensor]]:
    """The rows as float64, `rows` at a time: pieces small enough to stay in the CPU's cache while summed."""
    for start in range(0, len(features), rows):
        yield features[start : start + rows].double(), targets[start : start + rows].double()


def of_part(columns: tuple[Tensor, ...], parts: np.ndarray, part: int) -> tuple[Tensor, ...]:
    """The rows of `columns` in split `part` (the tensors themselves when every row is)."""
    if (parts == part).all():
        return columns
    mine = torch.from_numpy(parts == part)
    return tuple(column[mine] for column in columns)


@dataclass
class RowSample:
    """A uniform sample of rows: those with the smallest draws, kept as groups go by, in tensors made once (a new
    small tensor per group, alive between the groups' big ones, fragments the heap: see TrainingSums.gather).
    Sorted by draw; an empty place has an infinite draw."""

    draws: Tensor
    features: Tensor
    targets: Tensor

    @classmethod
    def empty(cls, limit: int, n_features: int, n_targets: int) -> "RowSample":
        draws = torch.full((limit,), math.inf, dtype=torch.float64)
        return cls(draws, torch.zeros(limit, n_features), torch.zeros(limit, n_targets))

    def __len__(self) -> int:
        return int(self.draws.isfinite().sum())

    def offer(self, draws: Tensor, features: Tensor, targets: Tensor) -> None:
        limit = len(self.draws)
        if len(draws) > limit:
            smallest = draws.topk(limit, largest=False).indices
            draws, features, targets = draws[smallest], features[smallest], targets[smallest]
        keep = torch.cat([self.draws, draws]).argsort()[:limit]
        for kept, offered in ((self.draws, draws), (self.features, features), (self.targets, targets)):
            kept.copy_(torch.cat([kept, offered.to(kept.dtype)])[keep])

    @classmethod
    def merged(cls, samples: Sequence["RowSample"]) -> "RowSample":
        first = samples[0]
        whole = cls.empty(len(first.draws), first.features.shape[1], first.targets.shape[1])
        for sample in samples:
            whole.offer(sample.draws, sample.features, sample.targets)
        return whole


@dataclass
class Survey:
    """What one pass over the row groups gathers (see the module's docstring)."""

    counts: np.ndarray  # groups × 3: each group's rows of train, val, test (zero where another process read it)
    group_sums: np.ndarray  # groups × columns: Σ of each group's usable values, for the digest
    sums: TrainingSums | None  # of the training rows; None: no training rows
    held_out: list[NormalEquations | None]  # raw normal equations of the val and test rows (None for train)
    samples: list[RowSample]  # of train, val, test

    @classmethod
    def of(cls, table: StreamedTable, rank: int = 0, world_size: int = 1) -> "Survey":
        """Survey every world_size-th group from `rank` (all of them by default)."""
        shape = len(table.feature_names), len(table.target_names)
        counts = np.zeros((len(table.groups), 3), dtype=np.int64)
        group_sums = np.zeros((len(table.groups), sum(shape)))
        held_out: list[NormalEquations | None] = [None] * len(PARTS)
        samples = [RowSample.empty(SAMPLE_ROWS, *shape) for _ in PARTS]

        def training_rows() -> Iterator[tuple[Tensor, Tensor]]:
            numbers = range(rank, len(table.groups), world_size)
            for number, (x, y, parts, draws) in zip(
                numbers, read_ahead(partial(table.read, as_written=True), numbers), strict=True
            ):
                counts[number] = np.bincount(parts, minlength=3)
                group_sums[number] = torch.cat([x.double().sum(0), y.double().sum(0)]).numpy()
                for part in np.flatnonzero(counts[number]):
                    px, py, pdraws = of_part((x, y, torch.from_numpy(draws)), parts, part)
                    samples[part].offer(pdraws, px, py)
                    if part == PARTS["train"]:
                        yield from in_float64_pieces(px, py, CHUNK_ROWS)
                        continue
                    equations = held_out[part]
                    shifts = None if equations is None else (equations.shift_x, equations.shift_y)
                    group = NormalEquations.gather(in_float64_pieces(px, py, CHUNK_ROWS), *shape, shifts)
                    if equations is None:
                        held_out[part] = group
                    else:  # (in place: no new tensors kept per group, see RowSample)
                        equations.absorb(group)

        rows = training_rows()
        first = next(rows, None)  # (a process may have no training rows: its groups are another's, or none)
        sums = None if first is None else TrainingSums.gather(itertools.chain([first], rows), *shape)
        return cls(counts, group_sums, sums, held_out, samples)

    @classmethod
    def merged(cls, surveys: Sequence["Survey"]) -> "Survey":
        """The survey of all the groups that `surveys` read between them."""
        sums = [survey.sums for survey in surveys if survey.sums is not None]
        held_out = []
        for part in PARTS.values():
            parts = [survey.held_out[part] for survey in surveys if survey.held_out[part] is not None]
            held_out.append(NormalEquations.combined(parts) if parts else None)
        return cls(
            sum(survey.counts for survey in surveys),
            sum(survey.group_sums for survey in surveys),
            TrainingSums.combined(sums) if sums else None,
            held_out,
            [RowSample.merged([survey.samples[part] for survey in surveys]) for part in PARTS.values()],
        )

    def equations(self, part: int) -> NormalEquations | None:
        """The raw normal equations of a split's rows."""
        return self.held_out[part] if part != PARTS["train"] or self.sums is None else self.sums.equations

    def digest(self) -> str:
        """A fingerprint of the rows: each group's counts per split and sums of values. Each group's figures
        are computed alike whichever process read it, so the digest is the same for any number of processes."""
        digest = hashlib.blake2b(digest_size=8)
        digest.update(self.counts.tobytes())
        digest.update(self.group_sums.tobytes())
        return digest.hexdigest()


def survey_everywhere(table: StreamedTable) -> Survey:
    """The survey of all the groups: shared out over the processes of a running DDP job, else read here."""
    distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
    if not distributed:
        return Survey.of(table)
    world_size = torch.distributed.get_world_size()
    gathered: list = [None] * world_size
    torch.distributed.all_gather_object(gathered, Survey.of(table, torch.distributed.get_rank(), world_size))
    return Survey.merged(gathered)


def batch_count(rows: int, batch_size: int, drop_last: bool, world_size: int) -> int:
    """The batches of an epoch of `rows` rows in global batches of `batch_size`: the last, smaller one is kept
    unless `drop_last` or it has fewer rows than processes to share it (each process takes at least one)."""
    full, partial = divmod(rows, batch_size)
    return full + int(partial >= world_size and not drop_last)


def local_batch(batch_size: int, rank: int, world_size: int) -> int:
    """Process `rank`'s part of a global batch: an equal part, the first batch_size % world_size one row more
    (the model weights each process's loss by its rows, so the step is one process's)."""
    return batch_size // world_size + int(rank < batch_size % world_size)


def share_of(rows: int, batch_size: int, drop_last: bool, rank: int, world_size: int) -> tuple[int, int]:
    """Where process `rank`'s rows start and end in the epoch's sequence of `rows` rows: every process gets its
    local_batch of each full batch, and an equal part (±1) of a last, smaller one."""
    full, partial = divmod(rows, batch_size)
    kept = partial if batch_count(rows, batch_size, drop_last, world_size) > full else 0
    shares = [
        full * local_batch(batch_size, r, world_size) + kept // world_size + int(r < kept % world_size)
        for r in range(world_size)
    ]
    start = sum(shares[:rank])
    return start, start + shares[rank]


@dataclass
class StreamedSplit:
    """One split of a streamed table: its size, a pass over its rows, and its epochs of batches."""

    table: StreamedTable
    part: int  # 0 train, 1 val, 2 test
    group_rows: np.ndarray  # its rows in each group
    rows_sample: RowSample
    raw_equations: NormalEquations | None  # of its rows, gathered by the survey (None: no rows)

    @property
    def feature_names(self) -> list[str]:
        return self.table.feature_names

    @property
    def target_names(self) -> list[str]:
        return self.table.target_names

    def __len__(self) -> int:
        return int(self.group_rows.sum())

    def rows_of(self, number: int, as_written: bool = False) -> tuple[Tensor, Tensor]:
        x, y, parts, _ = self.table.read(number, as_written)
        return of_part((x, y), parts, self.part)

    def chunks(self, chunk_rows: int = CHUNK_ROWS, file_order: bool = True) -> Iterator[tuple[Tensor, Tensor]]:
        """Its rows in file order (whatever `file_order` asks) as float64, in pieces of at most `chunk_rows` rows
        (one pass for sums)."""
        for number in np.flatnonzero(self.group_rows):
            yield from in_float64_pieces(*self.rows_of(int(number), as_written=True), chunk_rows)

    def equations(
        self, features: Normalizer, targets: Normalizer, shifts: tuple[Tensor, Tensor] | None = None
    ) -> NormalEquations:
        """Its normal equations in the normalized space, from the survey's sums (no pass over its rows)."""
        equations = self.raw_equations.normalized(features, targets)
        return equations if shifts is None else equations.shifted(*shifts)

    def sample(self, limit: int) -> Table:
        """A uniform sample of at most `limit` (≤ SAMPLE_ROWS) rows, for pictures."""
        sample, rows = self.rows_sample, min(limit, len(self.rows_sample))
        return Table(sample.features[:rows], sample.targets[:rows], self.feature_names, self.target_names)

    def group_order(self, epoch: int, shuffle: bool) -> np.ndarray:
        """The order of the row groups in `epoch`: shuffled by (seed, epoch), the same in every process."""
        groups = len(self.group_rows)
        return np.random.default_rng([self.table.seed, epoch]).permutation(groups) if shuffle else np.arange(groups)

    def batches(self, epoch: int, loading: "Loading") -> Iterator[tuple[Tensor, Tensor]]:
        """Process `loading.rank`'s batches of `epoch` (see the module's docstring)."""
        order = self.group_order(epoch, loading.shuffle)
        counts = self.group_rows[order]
        start, stop = share_of(len(self), loading.batch_size, loading.drop_last, loading.rank, loading.world_size)
        ends = np.cumsum(counts)
        wanted = [  # (group, first row, end row) of the groups that hold a part of this process's share
            (int(number), max(start - (end - count), 0), min(stop - (end - count), count))
            for number, count, end in zip(order, counts, ends, strict=True)
            if count and end > start and end - count < stop
        ]
        pieces = (tuple(t[first:end] for t in self.rows_of(number)) for number, first, end in wanted)
        if loading.shuffle and loading.buffer_rows:
            seed = np.random.SeedSequence([self.table.seed, epoch, loading.rank]).generate_state(1)[0]
            pieces = shuffled(pieces, loading.buffer_rows, torch.Generator().manual_seed(int(seed)), loading.pin)
        local = local_batch(loading.batch_size, loading.rank, loading.world_size)
        return made_ahead(in_batches(pieces, local, loading.pin))


@dataclass(frozen=True)
class Loading:
    """How one process takes a split's batches."""

    batch_size: int  # global, over all the processes
    shuffle: bool
    drop_last: bool
    buffer_rows: int
    rank: int = 0
    world_size: int = 1
    pin: bool = False  # make batches in pinned memory (training on a GPU)


def read_ahead(read: Callable, wanted: Sequence) -> Iterator:
    """`read` of each of `wanted` in turn, the next one read by a thread while the current one is used (pyarrow
    decodes with the GIL released)."""
    if not wanted:
        return
    with ThreadPoolExecutor(max_workers=1) as reader:
        pending = reader.submit(read, wanted[0])
        for want in wanted[1:]:
            ready, pending = pending.result(), reader.submit(read, want)
            yield ready
        yield pending.result()


def made_ahead(items: Iterator, depth: int = 8) -> Iterator:
    """The items of `items`, made by a thread of their own up to `depth` ahead of their use: reading, shuffling and
    cutting batches (pyarrow's decoding and torch's copies release the GIL) then overlap the training step. An
    error there is raised here; leaving early stops the thread."""
    ready: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def make() -> None:
        try:
            for item in itertools.chain(items, [END]):
                while not stop.is_set():
                    with contextlib.suppress(queue.Full):
                        ready.put(item, timeout=0.1)
                        break
                if stop.is_set():
                    return
        except BaseException as error:  # (to the thread that uses the items)
            ready.put(error)

    threading.Thread(target=make, name="linreg stream", daemon=True).start()
    try:
        while (item := ready.get()) is not END:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()


def joined(first: tuple[Tensor, Tensor], second: tuple[Tensor, Tensor], pin: bool) -> tuple[Tensor, Tensor]:
    """The rows of `first`, then those of `second`, in new tensors (pinned if `pin`)."""
    out = []
    for a, b in zip(first, second, strict=True):
        rows = torch.empty((len(a) + len(b), a.shape[1]), dtype=a.dtype, pin_memory=pin)
        out.append(torch.cat([a, b], out=rows))
    return out[0], out[1]


def rows_at(pieces: tuple[Tensor, Tensor], positions: Tensor, pin: bool) -> tuple[Tensor, Tensor]:
    """The rows at `positions` of (features, targets), gathered into new tensors (pinned if `pin`)."""
    taken = []
    for values in pieces:
        out = torch.empty((len(positions), values.shape[1]), dtype=values.dtype, pin_memory=pin)
        taken.append(torch.index_select(values, 0, positions, out=out))
    return taken[0], taken[1]


def shuffled(
    pieces: Iterable[tuple[Tensor, Tensor]], buffer_rows: int, generator: torch.Generator, pin: bool
) -> Iterator[tuple[Tensor, Tensor]]:
    """The rows of `pieces` through a shuffle buffer of `buffer_rows` rows: once it is full, each arriving row
    takes the place of a random one, which leaves (a piece at a time); at the end the rest leave in random order.
    Each piece costs work in proportion to its own rows, not to the buffer's."""
    buffer: tuple[Tensor, Tensor] | None = None
    filled = 0
    for piece in pieces:
        if buffer is None:  # (made once, at the size asked for: the pieces' rows are copied into it)
            buffer = tuple(torch.empty((buffer_rows, part.shape[1]), dtype=part.dtype) for part in piece)
        start = min(buffer_rows - filled, len(piece[0]))  # the rows that fill it up
        for kept, part in zip(buffer, piece, strict=True):
            kept[filled : filled + start] = part[:start]
        filled += start
        while start < len(piece[0]):
            count = min(buffer_rows, len(piece[0]) - start)
            places = torch.randperm(buffer_rows, generator=generator)[:count]
            yield rows_at(buffer, places, pin)
            for kept, part in zip(buffer, piece, strict=True):
                kept.index_copy_(0, places, part[start : start + count])
            start += count
    if filled:
        yield rows_at(tuple(kept[:filled] for kept in buffer), torch.randperm(filled, generator=generator), pin)


def in_batches(pieces: Iterable[tuple[Tensor, Tensor]], size: int, pin: bool) -> Iterator[tuple[Tensor, Tensor]]:
    """The rows of `pieces` in batches of `size` rows (the last one smaller)."""
    carried: tuple[Tensor, Tensor] | None = None
    for piece in pieces:
        if carried is not None:
            piece = joined(carried, piece, pin)
        elif pin and not piece[0].is_pinned():  # (rows as read: a split served in file order)
            piece = piece[0].pin_memory(), piece[1].pin_memory()
        whole = len(piece[0]) // size * size
        for start in range(0, whole, size):
            yield piece[0][start : start + size], piece[1][start : start + size]
        carried = (piece[0][whole:], piece[1][whole:]) if whole < len(piece[0]) else None
    if carried is not None:
        yield carried


class GroupOrder(Sampler[int]):
    """The row groups in an epoch's order. Lightning calls `set_epoch` before every epoch, as on any sampler:
    the batches of that epoch follow from it."""

    def __init__(self, split: StreamedSplit, shuffle: bool) -> None:
        self.split, self.shuffle, self.epoch = split, shuffle, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        return iter(self.split.group_order(self.epoch, self.shuffle).tolist())

    def __len__(self) -> int:
        return len(self.split.group_rows)


class EpochBatches(Sampler[tuple[int, int]]):
    """The DataLoader's batch sampler: batch k of its sampler's epoch is named (epoch, k), which `StreamedRows`
    serves. Lightning counts, limits and re-seeds these batches as any others."""

    def __init__(self, sampler: GroupOrder, count: int) -> None:
        self.sampler, self.count = sampler, count

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch = self.sampler.epoch  # (read at the first batch: a resumed fit makes the iterator before set_epoch)
        for k in range(self.count):
            yield epoch, k

    def __len__(self) -> int:
        return self.count


class StreamedRows(Dataset):
    """A streamed split's batches by name: (epoch, k) is the next batch of the epoch being read; another name
    starts that epoch's stream afresh (a new epoch, a validation run, a resumed one) and skips to it."""

    def __init__(self, split: StreamedSplit, loading: Loading) -> None:
        self.split, self.loading = split, loading
        self.stream: Iterator[tuple[Tensor, Tensor]] = iter(())
        self.next_key: tuple[int, int] | None = None

    def __getitems__(self, key: tuple[int, int]) -> tuple[Tensor, Tensor]:
        epoch, k = key
        if key != self.next_key:
            self.stream = itertools.islice(self.split.batches(epoch, self.loading), k, None)
        self.next_key = (epoch, k + 1)
        return next(self.stream)

    def __getitem__(self, key: tuple[int, int]) -> tuple[Tensor, Tensor]:
        return self.__getitems__(key)
