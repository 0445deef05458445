"""The exceptions that reach the user as a plain message instead of a traceback."""

import errno
import functools
import logging
import math
import os
import re
import shutil
import signal
import sys
from collections.abc import Callable
from typing import TypeVar

from omegaconf.errors import ConfigAttributeError, ConfigKeyError, InterpolationResolutionError

T = TypeVar("T")
R = TypeVar("R")


class RunError(Exception):
    """A problem a person can fix: its message says what went wrong and what to do, instead of a traceback."""


class ConfigError(RunError, ValueError):
    """A setting or an input file is wrong; the message names it and says how to fix it."""


class TrainingDiverged(RunError):
    """The loss stopped being a finite number; the message says when and what to change."""


class Interrupted(BaseException):
    """SIGINT (Ctrl-C) or SIGTERM (a scheduler's stop, `kill`) ended the job. Not an error: a BaseException, as
    KeyboardInterrupt is, so that a sweep stops too instead of going on to its next job. The process exits with
    the shell's status for the signal, 128 + its number (130, 143)."""

    def __init__(self, signal_number: int, when: str = "") -> None:
        self.signal = signal.Signals(signal_number)
        self.when = when
        super().__init__(f"Interrupted by {self.signal.name}{f' {when}' if when else ''}.")

    @property
    def exit_status(self) -> int:
        return 128 + self.signal.value


def system_refusal(error: OSError) -> str:
    """An OSError no setting check foresaw (a full disk, a file removed midway) as a sentence naming the file."""
    where = f"{error.filename}: " if error.filename else ""
    if error.filename and error.errno in (errno.ENOSPC, errno.EIO, errno.EDQUOT):
        folder = os.path.dirname(os.path.abspath(error.filename))
        free = shutil.disk_usage(folder).free if os.path.isdir(folder) else math.nan
        return (
            f"{where}{error.strerror or error}, with {free / 1e6:,.0f} MB free on the disk of {folder}. Free some "
            "space there, or write elsewhere (hydra.run.dir, output_dir=, output=), then run again."
        )
    return (
        f"{where}{error.strerror or error}. The file system refused a read or write; check the paths given "
        "(output_dir, output=, data.path, ckpt_path) and the free space, then run again."
    )


def out_of_memory(error: BaseException) -> bool:
    """A failed allocation: Python's MemoryError, torch's on the CPU (a RuntimeError) or on the GPU."""
    return (
        isinstance(error, MemoryError)
        or type(error).__name__ == "OutOfMemoryError"
        or "can't allocate memory" in str(error)
    )


def is_explained(error: BaseException) -> bool:
    settings = ConfigAttributeError | ConfigKeyError | InterpolationResolutionError
    return isinstance(error, RunError | OSError | settings) or out_of_memory(error)


def explanation(error: BaseException) -> str:
    if isinstance(error, RunError):
        return str(error)
    if isinstance(error, InterpolationResolutionError):  # a ${...} in a setting that does not resolve
        reason = str(error.msg).splitlines()[0].removeprefix("KeyError raised while resolving interpolation: ")
        return (
            f"The setting {error.full_key} could not be resolved: {reason}. A ${{...}} in a setting names another "
            "setting (${data.batch_size}) or a resolver and what it needs (${oc.env:DATA_DIR}, with that variable "
            "set); quote it on the command line ('data.path=${oc.env:DATA_DIR}/table.csv')."
        )
    if isinstance(error, ConfigAttributeError | ConfigKeyError):  # a key the job reads is not in the config
        key = error.full_key or error.key
        return (
            f"The setting {key} is missing: the job reads it, and the command line or a config file removed it "
            f"(~{key}) or never set it. Leave it in (--help lists the config groups and their choices)."
        )
    if out_of_memory(error):
        where = "the GPU" if type(error).__name__ == "OutOfMemoryError" else "this machine"
        asked = re.search(r"tried to allocate ([\d.]+) ?(\w*)", str(error))
        size = "" if asked is None else f": {asked.group(1)} {asked.group(2) or 'bytes'} asked for"
        return (
            f"{where} ran out of memory{size}. Use fewer rows or columns (data.n_samples, data.n_features, "
            "data.features), a smaller data.batch_size, or a machine with more memory."
        )
    return system_refusal(error)


# What report_errors explains (RuntimeError and MemoryError where they are a lack of memory).
EXPLAINED = (
    RunError,
    OSError,
    MemoryError,
    RuntimeError,
    ConfigAttributeError,
    ConfigKeyError,
    InterpolationResolutionError,
)


def report_errors(task: Callable[[T], R]) -> Callable[[T], R]:
    """Turn a RunError into its message and exit status 1; HYDRA_FULL_ERROR=1 keeps the traceback."""

    @functools.wraps(task)
    def run(cfg: T) -> R:
        try:
            return task(cfg)
        except EXPLAINED as error:
            exit_explaining(error)
        except Interrupted as stop:  # (the job has said what it saved and how to go on)
            raise SystemExit(stop.exit_status) from None

    return run


def exit_explaining(error: BaseException, into_log: bool = True) -> None:
    """Print the error's explanation and exit with status 1; re-raise it where it has none, or where
    HYDRA_FULL_ERROR=1 asks for the traceback. (Called inside an `except` block.) With `into_log`, the run's log
    file (Hydra's train.log) says it too, so that a failed run's directory tells why it failed."""
    if os.environ.get("HYDRA_FULL_ERROR") == "1" or not is_explained(error):
        raise error
    message = f"Error: {explanation(error)}"
    print(message, file=sys.stderr)
    if into_log:
        record = logging.LogRecord(__name__, logging.ERROR, __file__, 0, message, None, None)
        for handler in logging.getLogger().handlers:
            if isinstance(handler, logging.FileHandler):
                handler.handle(record)
    raise SystemExit(1) from None
