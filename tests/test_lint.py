"""The tree stays clean for `make lint` (ruff's lint rules and formatting), as CI checks."""

import subprocess
import sys

from conftest import ROOT


def test_ruff_finds_nothing_to_fix():
    for command in (["check", "."], ["format", "--check", "."]):
        result = subprocess.run([sys.executable, "-m", "ruff", *command], cwd=ROOT, capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr
