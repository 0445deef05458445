"""Table files in, Arrow tables out: CSV and TSV (plain or compressed) and Parquet, read with pyarrow.

Arrow's readers are multi-threaded and typed: numbers, booleans, dates and text arrive as such, blank
cells as nulls. Columns that look numeric in the first megabyte are read as numbers straight away: float64
in a file of up to PRECISE_BYTES (the statistics then use the values as written, data.Table), float32 in a larger
one, so that a large numeric table never exists in memory at twice its training size.
"""

import csv
import io
import lzma
import re
import zipfile
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from linreg.errors import ConfigError

PARQUET_SUFFIXES = (".parquet", ".pq")
ARROW_CODECS = {".gz": "gzip", ".bz2": "bz2", ".zst": "zstd"}  # decompressed by Arrow (.xz, .zip: by Python)
SEPARATORS = ",;\t|"
# Cells read as true or false (besides Arrow's own true/false spellings); 0 and 1 stay numbers.
TRUE_WORDS = ["true", "True", "TRUE", "yes", "Yes", "YES"]
FALSE_WORDS = ["false", "False", "FALSE", "no", "No", "NO"]
SAMPLE_BYTES = 1 << 20
PRECISE_BYTES = 32 << 20  # text files up to this size are read in float64 (larger ones in float32)
PARQUET_BUFFER = 1 << 20  # bytes read at a time from a column chunk of a Parquet file
PARQUET_READING = {"pre_buffer": False, "buffer_size": PARQUET_BUFFER}  # (see read_parquet)
FIRST_ROWS = 1000  # rows of a Parquet file read in batches that stand for it where only names and types count


@dataclass(frozen=True)
class TextFormat:
    """How the cells of a CSV file are written: the settings data.sep, data.decimal and data.thousands."""

    sep: str | None = None  # None: detected from the first lines (, ; tab |), tab for .tsv files
    decimal: str = "."
    thousands: str | None = None  # e.g. "," for 192,883: such text columns become numbers


def resolve_path(path: str) -> Path:
    """The file a setting names; `pkg://linreg/datasets/x.csv` is one shipped inside the package."""
    if path.startswith("pkg://"):
        package, _, name = path.removeprefix("pkg://").rpartition("/")
        return Path(str(resources.files(package.replace("/", ".")).joinpath(name)))
    return Path(path).expanduser()


def describe_row(index: int, path: str) -> str:
    """Where row `index` (0 = the first after the header) is, as a person looks it up: its line in a CSV file,
    counting the empty lines the reader skipped."""
    if is_parquet(resolve_path(path)):
        return f"row {index + 1}"
    line = index + 2
    for empty in empty_lines(path):  # (only for messages: reads the file again)
        if empty > line:
            break
        line += 1
    return f"line {line}"


def empty_lines(path: str) -> list[int]:
    """The numbers of a CSV file's empty lines, which the reader skips (a Parquet file has none)."""
    file = resolve_path(path)
    if not file.is_file() or is_parquet(file):
        return []
    with file.open("rb") as lines:
        return [number for number, line in enumerate(lines, 1) if not line.rstrip(b"\r\n")]


def is_parquet(file: Path) -> bool:
    return file.is_dir() or file.suffix.lower() in PARQUET_SUFFIXES


def read_table_file(
    path: str, text: TextFormat = TextFormat(), as_text: Collection[str] | bool = (), setting: str = "data.path"
) -> pa.Table:
    """The file `setting` names as an Arrow table with at least one row.

    `as_text` columns of a CSV file are kept as written (True: all of them, as predict.py copies them out).
    """
    file = checked_file(path, setting)
    if not is_parquet(file) and is_utf16(file):
        raise ConfigError(
            f'{setting}={path} is UTF-16 text (two bytes a letter, as some spreadsheet programs save "Unicode '
            'text"); save it as UTF-8 CSV.'
        )
    try:
        table = read_parquet(file) if is_parquet(file) else read_text(file, text, as_text)
        names = table.column_names  # (Arrow checks that a header is text only here)
    except (pa.ArrowInvalid, UnicodeDecodeError, zipfile.BadZipFile, lzma.LZMAError, OSError, EOFError) as error:
        if "Empty CSV file" in str(error):
            raise ConfigError(f"{setting}={path} is empty; a table needs a header row and rows of values.") from None
        twice = re.search(r"Multiple matches for FieldRef.Name\((.*?)\)", str(error))
        if twice:  # (a Parquet file with two columns of one name)
            raise duplicate_columns(setting, path, [twice.group(1)]) from None
        column = re.search(r"CSV column #(\d+).*invalid UTF8", str(error))
        if column:  # (the columns read as text, as predict.py reads them, meet the bytes here)
            raise not_utf8(setting, path, [f"number {int(column.group(1)) + 1}"]) from None
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        kind = "Parquet" if is_parquet(file) else "CSV"
        fields = re.search(r"Expected (\d+) columns, got (\d+): (.*)", reason)
        if fields and (line := line_holding(file, fields.group(3))):
            expected, got = fields.group(1), fields.group(2)
            raise ConfigError(
                f"{setting}={path}: line {line} has {got} fields where the header has {expected} "
                f"({fields.group(3)[:80]!r}). Quote a cell that holds the separator, or correct the line."
            ) from None
        raise ConfigError(f"{setting}={path} could not be read as a {kind} file ({reason}).") from None
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise duplicate_columns(setting, path, duplicates)
    if table.num_rows == 0:
        raise ConfigError(f"{setting}={path} has a header ({', '.join(names)}) but no rows.")
    undecodable = [field.name for field in table.schema if pa.types.is_binary(field.type) and not is_parquet(file)]
    if undecodable:  # (Arrow keeps a CSV column whose bytes are not UTF-8 as bytes)
        raise not_utf8(setting, path, list(map(repr, undecodable)))
    return table


def line_holding(file: Path, row: str) -> int | None:
    """The number of the file's first line that reads `row` (Arrow's parse errors quote the row, not its line)."""
    wanted = row.encode()
    with open_binary(file) as lines:
        return next((number for number, line in enumerate(lines, 1) if line.rstrip(b"\r\n") == wanted), None)


def duplicate_columns(setting: str, path: str, names: list[str]) -> ConfigError:
    return ConfigError(
        f"{setting}={path} has more than one column named {', '.join(map(repr, names))}; "
        "rename them in the file so that every column has its own name."
    )


def is_utf16(file: Path) -> bool:
    """A byte-order mark of UTF-16, or the zero byte that each of its ASCII letters comes with."""
    try:
        with open_binary(file) as stream:
            start = stream.read(1000)
    except (OSError, EOFError, zipfile.BadZipFile, lzma.LZMAError):
        return False  # (the read that follows says what is wrong)
    if start.startswith((b"\xff\xfe", b"\xfe\xff")):
        return True
    halves = start[0::2], start[1::2]  # (big- and little-endian: one of them all zeros)
    return len(start) >= 4 and any(half.count(0) >= 0.9 * len(half) for half in halves)


def not_utf8(setting: str, path: str, columns: list[str]) -> ConfigError:
    return ConfigError(
        f"{setting}={path}: column(s) {', '.join(columns)} hold text that is not UTF-8 (a file saved as Latin-1 or "
        "Windows-1252, say); save the file as UTF-8."
    )


def checked_file(path: str, setting: str) -> Path:
    """The path as a readable table file or directory of Parquet files, or an error saying what it is instead."""
    file = resolve_path(path)
    if file.is_symlink() and not file.exists():
        raise ConfigError(
            f"{setting}={path} is a symbolic link that leads to no file (a missing target, or a loop of links); "
            "give the path of a table file."
        )
    if not file.exists():
        raise ConfigError(f"{setting}={path}: no such file ({file.absolute()}). Give the path of a table file.")
    if file.is_dir():
        if not any(file.glob("**/*.parquet")):
            raise ConfigError(
                f"{setting}={path} is a directory without .parquet files; give a CSV or Parquet file, "
                "or a directory of Parquet files."
            )
        others = sorted(str(other.relative_to(file)) for other in file.rglob("*") if is_other_file(other, file))
        if others:  # (Arrow's reader would fail on them, the streamed one pass them by: rows lost unsaid)
            shown = ", ".join(others[:5]) + (", …" if len(others) > 5 else "")
            raise ConfigError(
                f"{setting}={path} is a directory of Parquet files that also holds {len(others)} other file(s) "
                f"({shown}); its table is its .parquet files. Move the others out, or convert them to Parquet."
            )
    elif not file.is_file():  # a FIFO, a device, a socket: reading it could wait forever
        raise ConfigError(f"{setting}={path} is not a regular file; give the path of a CSV or Parquet file.")
    return file


def is_other_file(path: Path, directory: Path) -> bool:
    """A file in a Parquet directory that is no Parquet file, and not one Arrow and Spark leave aside by name
    (`_SUCCESS`, `.part.crc`, `_metadata`: beginning with _ or .)."""
    hidden = any(part.startswith(("_", ".")) for part in path.relative_to(directory).parts)
    return path.is_file() and not hidden and path.suffix.lower() not in PARQUET_SUFFIXES


def read_parquet(file: Path) -> pa.Table:
    """One Parquet file, or every .parquet file under a directory read as one table; decimal columns as float64
    (numbers; Arrow would hand them to NumPy as Python objects).

    A local file is read a column chunk at a time through a small buffer instead of Arrow's default of fetching
    a row group's byte ranges ahead in parallel (`pre_buffer`, meant for object stores): as fast here, and the
    read peaks at 1.2 times the table it gives instead of 2.2 times (10M x 17 float64 columns: 1.6 GB, not 2.9).
    """
    if file.is_dir():
        table = pq.ParquetDataset(file, **PARQUET_READING).read()
    else:
        table = pq.read_table(file, **PARQUET_READING)
    for index, field in enumerate(table.schema):
        if pa.types.is_decimal(field.type):
            table = table.set_column(index, field.name, table.column(index).cast(pa.float64()))
    return table


@dataclass
class ParquetBatches:
    """A Parquet file read a batch of rows at a time instead of as one table: Arrow then never holds every cell
    at once (a 10M x 17 float64 table is 1.3 GB). Its `first_rows` stand for it where only the columns' names
    and types count; reading in batches suits columns of numbers without blanks, which need nothing of the whole
    column before they are encoded (CsvDataModule.read_table)."""

    file: Path
    metadata: pq.FileMetaData  # (read once: the row count and each row group's statistics)
    first_rows: pa.Table

    @property
    def rows(self) -> int:
        return self.metadata.num_rows

    @classmethod
    def open(cls, path: str) -> "ParquetBatches | None":
        """The file, where it is one readable Parquet file with rows and columns of distinct names; else None
        (read_table_file then reads it, or says what is wrong with it)."""
        file = resolve_path(path)
        if not (file.is_file() and file.suffix.lower() in PARQUET_SUFFIXES):
            return None
        try:
            with pq.ParquetFile(file) as parquet:
                metadata = parquet.metadata
                first = next(parquet.iter_batches(batch_size=FIRST_ROWS), None)
        except (pa.ArrowInvalid, OSError):
            return None
        names = [] if first is None else first.schema.names
        if not metadata.num_rows or len(set(names)) < len(names):
            return None
        return cls(file, metadata, pa.Table.from_batches([first]))

    def holds_numbers_without_blanks(self, columns: list[str]) -> bool:
        """Whether each of `columns` holds numbers or true/false and, by the statistics the file keeps of each row
        group, no blank cell (a file written without them is read whole)."""
        schema = self.first_rows.schema
        for name in columns:
            kind = schema.field(name).type
            if not (pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind)):
                return False
        metadata = self.metadata
        for group in map(metadata.row_group, range(metadata.num_row_groups)):
            for chunk in map(group.column, range(group.num_columns)):
                counted = chunk.statistics is not None and chunk.statistics.has_null_count
                if chunk.path_in_schema in columns and not (counted and chunk.statistics.null_count == 0):
                    return False
        return True

    def column(self, name: str) -> pa.ChunkedArray:
        """One whole column."""
        return pq.read_table(self.file, columns=[name], **PARQUET_READING).column(0)

    def batches(self, columns: list[str], rows: int) -> Iterator[pa.RecordBatch]:
        """`columns` in batches of at most `rows` rows, in the file's order."""
        with pq.ParquetFile(self.file, **PARQUET_READING) as parquet:
            yield from parquet.iter_batches(batch_size=rows, columns=columns)


def separator_of(path: str, text: TextFormat) -> str | None:
    """The delimiter a table file's text is read with (data.sep, or detected); None for Parquet."""
    file = resolve_path(path)
    return None if is_parquet(file) else text_separator(file, text, first_bytes(file))


def text_separator(file: Path, text: TextFormat, sample: bytes) -> str:
    return text.sep or ("\t" if ".tsv" in file.suffixes else detect_separator(sample))


def read_text(file: Path, text: TextFormat, as_text: Collection[str] | bool) -> pa.Table:
    """A delimited text file: numeric-looking columns read as numbers at once (fallback: Arrow's own types)."""
    sample = first_bytes(file)
    parse = pa_csv.ParseOptions(delimiter=text_separator(file, text, sample))
    convert = dict(decimal_point=text.decimal, true_values=TRUE_WORDS, false_values=FALSE_WORDS)
    preview = pa_csv.read_csv(
        io.BytesIO(sample[: sample.rfind(b"\n") + 1] or sample),
        parse_options=parse,
        convert_options=pa_csv.ConvertOptions(**convert),
    )
    text_types = {name: pa.string() for name in (preview.column_names if as_text is True else as_text)}
    number = pa.float64() if file.stat().st_size <= PRECISE_BYTES else pa.float32()
    numeric = {
        field.name: number
        for field in preview.schema
        if (pa.types.is_integer(field.type) or pa.types.is_floating(field.type)) and field.name not in text_types
    }
    try:
        return read_csv_stream(file, parse, pa_csv.ConvertOptions(column_types=numeric | text_types, **convert))
    except pa.ArrowInvalid:  # text further down in a column that began with numbers: let Arrow type it
        return read_csv_stream(file, parse, pa_csv.ConvertOptions(column_types=text_types, **convert))


def read_csv_stream(file: Path, parse: pa_csv.ParseOptions, convert: pa_csv.ConvertOptions) -> pa.Table:
    with open_binary(file) as stream:
        return pa_csv.read_csv(stream, parse_options=parse, convert_options=convert)


def open_binary(file: Path) -> BinaryIO:
    """The file's bytes, decompressed by its suffix (.gz .bz2 .xz .zst, or the one file inside a .zip)."""
    suffix = file.suffix.lower()
    if suffix in ARROW_CODECS:
        return pa.input_stream(str(file), compression=ARROW_CODECS[suffix])
    if suffix == ".xz":
        return lzma.open(file, "rb")
    if suffix == ".zip":
        archive = zipfile.ZipFile(file)
        members = [name for name in archive.namelist() if not name.endswith("/")]
        if len(members) != 1:
            raise zipfile.BadZipFile(f"the archive holds {len(members)} files; one table file is needed")
        return archive.open(members[0])
    return open(file, "rb")


def first_bytes(file: Path) -> bytes:
    with open_binary(file) as stream:
        return stream.read(SAMPLE_BYTES)


def detect_separator(sample: bytes) -> str:
    """The one of , ; tab | that splits the first lines into the same number (>1) of fields; a comma by default."""
    lines = sample.decode("utf-8", errors="replace").splitlines()[:20]
    if len(lines) > 1 and len(sample) == SAMPLE_BYTES:
        lines = lines[:-1]  # (the last one may be cut off)
    best, best_fields = ",", 1
    for sep in SEPARATORS:
        try:
            counts = {len(fields) for fields in csv.reader(lines, delimiter=sep) if fields}
        except csv.Error:  # (a cell longer than Python's csv limit, 128 KiB: Arrow reads it, this guess cannot)
            continue
        if len(counts) == 1 and (fields := counts.pop()) > best_fields:
            best, best_fields = sep, fields
    return best
