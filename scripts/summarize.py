"""Summarize a finished sweep: python scripts/summarize.py logs/sweeps/<sweep directory>"""

import sys
from pathlib import Path

from linreg.sweeps import format_table, summarize_sweep

if __name__ == "__main__":
    if len(sys.argv) != 2 or not Path(sys.argv[1]).is_dir():
        sys.exit("usage: python scripts/summarize.py <sweep directory>  (a folder of logs/sweeps/)")
    print(format_table(summarize_sweep(Path(sys.argv[1]))))
    print(f"\nwritten to {Path(sys.argv[1]) / 'summary.csv'}")
