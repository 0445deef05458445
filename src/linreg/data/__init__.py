"""Data: files are read (formats.py) and encoded by a plan (columns.py) into a `Table` (read.py);
a data module splits and batches it (datamodule.py)."""

from linreg.data.datamodule import (
    DATA_MODULES,
    CsvDataModule,
    InMemoryDataModule,
    SeededOrder,
    ShuffledBatches,
    SplitRows,
    SyntheticDataModule,
    TabularDataModule,
    split,
    split_positions,
)
from linreg.data.read import Table, make_synthetic, read_with_plan

__all__ = [
    "DATA_MODULES",
    "CsvDataModule",
    "InMemoryDataModule",
    "SeededOrder",
    "ShuffledBatches",
    "SplitRows",
    "SyntheticDataModule",
    "TabularDataModule",
    "Table",
    "make_synthetic",
    "read_with_plan",
    "split",
    "split_positions",
]
