"""Ctrl-C and SIGTERM end a training job as an `Interrupted`: last.ckpt saved, status.json saying how to resume.
A reader that goes away (`train.py | head -1`) does not end it at all.

Inside `trainer.fit` Lightning handles both: SIGTERM sets its flag and the loops stop at the next batch's end;
Ctrl-C stops at once. Its callbacks' `on_exception` run (LastCheckpoint saves there), and then it ends the fit
with SystemExit, which `lightning_interruptions` names. Outside the fit (reading the table, the statistics)
`interruptible` turns SIGTERM and Ctrl-C into the same `Interrupted`.
"""

import contextlib
import io
import logging
import os
import shlex
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

import lightning as L

from linreg.errors import Interrupted
from linreg.runtime import command_line_overrides


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """SIGTERM and Ctrl-C raise Interrupted in the block. While Lightning fits, its own SIGTERM handler is the
    process's and calls this one after its own: then this one leaves the stop to Lightning's loops, which end
    at a batch's end instead of in the middle of an optimizer step."""

    def stop(signal_number: int, frame: FrameType | None) -> None:
        if signal.getsignal(signal.SIGTERM) is stop:
            raise Interrupted(signal_number)

    if threading.current_thread() is not threading.main_thread():  # (only the main thread may set handlers)
        yield
        return
    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    except KeyboardInterrupt:
        raise Interrupted(signal.SIGINT) from None
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def lightning_interruptions(trainer: L.Trainer) -> Iterator[None]:
    """The SystemExit with which Lightning ends an interrupted fit or test, as Interrupted, saying when."""
    try:
        yield
    except SystemExit:
        if not trainer.interrupted:
            raise
        signal_number = signal.SIGTERM if trainer.received_sigterm else signal.SIGINT
        raise Interrupted(signal_number, f"at epoch {trainer.current_epoch}, step {trainer.global_step}") from None


def resume_command(last_checkpoint: Path) -> str | None:
    """The command that goes on from `last_checkpoint`: this job's, with ckpt_path= naming it (None where Hydra
    did not start the job)."""
    overrides = command_line_overrides()
    if overrides is None:
        return None
    kept = [override for override in overrides if not override.startswith("ckpt_path=")]
    return shlex.join(["python", sys.argv[0], *kept, f"ckpt_path={last_checkpoint}"])


class OutliveReader:
    """A console stream (sys.stdout, sys.stderr) whose reader may go away, as `head` does after a line: once the
    pipe is closed, what is written goes to /dev/null instead of ending the job with BrokenPipeError."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        try:
            return self.stream.write(text)
        except BrokenPipeError:
            self.discard()
            return len(text)

    def flush(self) -> None:
        try:
            self.stream.flush()
        except BrokenPipeError:
            self.discard()

    def discard(self) -> None:
        """From now on the stream's descriptor is /dev/null's (also for what its buffer still holds)."""
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, self.stream.fileno())
        os.close(devnull)

    def __getattr__(self, name: str) -> Any:  # (isatty, encoding, fileno: the stream's)
        return getattr(self.stream, name)


@contextlib.contextmanager
def console_outlives_reader() -> Iterator[None]:
    """sys.stdout and sys.stderr, and the log handlers that write to them (Hydra's console), as OutliveReader;
    a letter the console's encoding lacks (− under PYTHONIOENCODING=latin-1) is written as its code (\\u2212)
    instead of losing the whole message. (Lightning's progress bar looks sys.stdout up each time it starts one.)"""
    streams = {"stdout": sys.stdout, "stderr": sys.stderr}
    strict = [s for s in streams.values() if isinstance(s, io.TextIOWrapper) and s.errors == "strict"]
    for stream in strict:
        stream.reconfigure(errors="backslashreplace")
    survivors = {name: OutliveReader(stream) for name, stream in streams.items()}
    handlers = [h for h in logging.getLogger().handlers if isinstance(h, logging.StreamHandler)]
    for handler in handlers:
        for name, stream in streams.items():
            if handler.stream is stream:
                handler.setStream(survivors[name])  # type: ignore[arg-type]
    sys.stdout, sys.stderr = survivors["stdout"], survivors["stderr"]  # type: ignore[assignment]
    try:
        yield
    finally:
        sys.stdout, sys.stderr = streams["stdout"], streams["stderr"]
        for stream in strict:
            stream.reconfigure(errors="strict")
        for handler in handlers:
            if isinstance(handler.stream, OutliveReader):
                handler.setStream(handler.stream.stream)
