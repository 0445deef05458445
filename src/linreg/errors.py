"""The exceptions that reach the user as a plain message instead of a traceback."""

import functools
import os
import sys
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


class RunError(Exception):
    """A problem a person can fix: its message says what went wrong and what to do, instead of a traceback."""


class ConfigError(RunError, ValueError):
    """A setting or an input file is wrong; the message names it and says how to fix it."""


class TrainingDiverged(RunError):
    """The loss stopped being a finite number; the message says when and what to change."""


def report_errors(task: Callable[[T], R]) -> Callable[[T], R]:
    """Turn a RunError into its message and exit status 1; HYDRA_FULL_ERROR=1 keeps the traceback."""

    @functools.wraps(task)
    def run(cfg: T) -> R:
        try:
            return task(cfg)
        except RunError as error:
            if os.environ.get("HYDRA_FULL_ERROR") == "1":
                raise
            print(f"Error: {error}", file=sys.stderr)
            raise SystemExit(1) from None

    return run
