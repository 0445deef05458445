"""Measure the template's training speed.

python scripts/benchmark.py [--rows N] [--batch-sizes 1024 8192] [--device cpu|cuda] [--quick]
"""

from linreg.benchmark import main

if __name__ == "__main__":
    main()
