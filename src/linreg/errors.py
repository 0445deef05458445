"""The one exception type that reaches the user as a plain message instead of a traceback."""

import functools
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

from hydra.errors import InstantiationException
from hydra.utils import instantiate

T = TypeVar("T")
R = TypeVar("R")


class ConfigError(ValueError):
    """A setting or an input file is wrong; the message names it and says how to fix it."""


def report_config_errors(task: Callable[[T], R]) -> Callable[[T], R]:
    """Turn a ConfigError into its message and exit status 1; HYDRA_FULL_ERROR=1 keeps the traceback."""

    @functools.wraps(task)
    def run(cfg: T) -> R:
        try:
            return task(cfg)
        except ConfigError as error:
            if os.environ.get("HYDRA_FULL_ERROR") == "1":
                raise
            print(f"Error: {error}", file=sys.stderr)
            raise SystemExit(1) from None

    return run


def build(config: Any, **kwargs: Any) -> Any:
    """hydra.utils.instantiate, letting our ConfigError through unwrapped so its message stays short."""
    try:
        return instantiate(config, **kwargs)
    except InstantiationException as error:
        if isinstance(error.__cause__, ConfigError):
            raise error.__cause__ from None
        raise
