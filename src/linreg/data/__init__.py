"""Data: files become a `Table` (read.py), a data module splits and batches it (datamodule.py)."""

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
)
from linreg.data.read import Table, make_synthetic, read_csv

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
    "read_csv",
    "split",
]
