"""How the jobs talk to Lightning and Hydra: quiet consoles, and objects built from config nodes."""

import contextlib
import csv
import errno
import json
import logging
import os
import stat
import tempfile
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.types import RunMode
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from linreg.errors import ConfigError

if TYPE_CHECKING:
    import lightning as L


# Lightning's lines at every Trainer: which accelerators exist (trainer.accelerator says which one runs),
# and tips to install its cloud services.
BANNERS = ("GPU available", "TPU available", "HPU available", "💡 Tip")


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


UMASK = current_umask()  # (read once: setting it to read it is not thread-safe)


def without_banners(record: logging.LogRecord) -> bool:
    return not record.getMessage().startswith(BANNERS)


@contextlib.contextmanager
def lightning_quieted() -> Iterator[None]:
    """Hide Lightning's console notices that do not apply to this template's runs.

    `import lightning` gives its logger a console handler of its own; where Hydra has already set up
    the root logger (console and the job's .log file) every Lightning message would be printed twice.
    """
    if logging.getLogger().hasHandlers():
        logging.getLogger("lightning").handlers.clear()
    notices = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    notices.addFilter(without_banners)
    with warnings.catch_warnings(), contextlib.ExitStack() as undo:
        undo.callback(notices.removeFilter, without_banners)
        # Step values are logged every log_every_n_steps steps, whatever the length of an epoch.
        warnings.filterwarnings("ignore", message=".*smaller than the logging interval")
        # A split of fraction 0 is left out on purpose.
        warnings.filterwarnings("ignore", message="Total length of `list` across ranks is zero")
        # The run directory is new; Hydra's own files are in it, no earlier metrics.csv.
        warnings.filterwarnings("ignore", message="Experiment logs directory .* exists and is not empty")
        # trainer.test returns only what is logged for loggers, configured or not.
        warnings.filterwarnings("ignore", message=r".*logger=True\)` but have no logger configured")
        # The table is in memory: worker processes would only add start-up time (data.num_workers).
        warnings.filterwarnings("ignore", message=".*does not have many workers")
        # Lightning's own use of a torch API.
        warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")
        yield


def build(config: Any, **kwargs: Any) -> Any:
    """hydra.utils.instantiate, with a class's refusal of its settings (an unknown or out-of-range argument) as
    one sentence naming the config node, and our ConfigError through unwrapped so its message stays short."""
    try:
        return instantiate(config, **kwargs)
    except InstantiationException as error:
        cause = error.__cause__
        if isinstance(cause, ConfigError):
            raise cause from None
        if isinstance(cause, TypeError | ValueError) or type(cause).__name__ == "MisconfigurationException":
            raise refused_settings(config, cause) from None
        raise


def build_each(cfg: DictConfig, group: str) -> list[Any]:
    """The objects of a group of nodes (callbacks, logger), each built from its `_target_`; a null one is
    switched off. A node that is not a class's settings is named instead of failing inside Lightning."""
    built = []
    for name, node in (cfg.get(group) or {}).items():
        if node is not None:
            built.append(build(buildable(node, f"{group}.{name}", group)))
    return built


def buildable(node: Any, key: str, group: str) -> DictConfig:
    """`node`, if it is a class's settings (a node with `_target_`); else a ConfigError naming `key`."""
    if not isinstance(node, DictConfig) or "_target_" not in node:
        shown = OmegaConf.to_yaml(node).strip().replace("\n", ", ") if isinstance(node, DictConfig) else node
        raise ConfigError(
            f"{key}={shown} is not the settings of a class (a node with _target_, as in configs/{group}/); "
            f"give one, or switch it off with ~{key}."
        )
    return node


def refused_settings(config: Any, cause: BaseException) -> ConfigError:
    """`trainer: lightning's Trainer refused these settings: ...`, naming the node and its class."""
    key = config._get_full_key(None) if isinstance(config, DictConfig) else ""
    target = str(config.get("_target_", "?") if isinstance(config, Mapping) else "?")
    where = f"{key} ({target})" if key else target
    reason = (str(cause).splitlines() or [type(cause).__name__])[0].rstrip(".")
    return ConfigError(
        f"{where} refused its settings: {reason}. Correct or remove that setting "
        "(add --cfg job to the command to see the settings it was given)."
    )


def logs_this_step(trainer: "L.Trainer") -> bool:
    """Whether Lightning writes step-level values to the loggers at the optimizer step just taken.

    It does so every `trainer.log_every_n_steps` steps. Step values are only logged then: a `self.log`
    call costs about two thirds of an optimizer step on a thousand rows, and the others would not be written.
    """
    every, steps = trainer.log_every_n_steps, trainer.global_step
    return bool(every) and steps > 0 and steps % every == 0


def as_numbers(metrics: Mapping[str, Any]) -> dict[str, float]:
    """Logged metrics (tensors) as plain numbers, for summaries, status.json and the sweeper."""
    return {name: float(value) for name, value in metrics.items()}


def writable_directory(key: str, path: str | Path) -> Path:
    """The folder a setting names, created if needed, or a ConfigError naming the setting and what is in the way."""
    folder = Path(path)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise cannot_write(key, folder, error) from None
    return folder


def check_replaceable(key: str, path: Path, overwrite: bool, read: dict[str, Path]) -> None:
    """`path` may be written: it is none of the files this job reads (`read`: what each is, e.g. "checkpoint"),
    even with `overwrite`, and no existing file unless `overwrite`; else a ConfigError naming `key`."""
    for what, source in read.items():
        if os.path.realpath(path) == os.path.realpath(source):  # (realpath: links and loops too)
            raise ConfigError(f"{key}={path} is the {what} this job reads; choose another {key}= (it is only read).")
    if path.exists() and not overwrite:
        raise ConfigError(f"{key}={path} exists already; choose another {key}= or set overwrite=true to replace it.")


def cannot_write(key: str, path: Path, error: OSError) -> ConfigError:
    """Why `key`=`path` cannot be written, in words: the file in the way of a folder, or the system's reason."""
    blocking = next((folder for folder in (path, *path.parents) if folder.exists() and not folder.is_dir()), None)
    reason = f"{blocking} is a file, not a folder" if blocking else (error.strerror or str(error))
    return ConfigError(f"{key}={path} cannot be written: {reason}; choose another {key}=.")


@contextlib.contextmanager
def replaced_atomically(path: Path) -> Iterator[Path]:
    """A new, empty temporary file beside `path` for the block to fill; renamed to `path` when the block ends,
    removed if it fails. A reader never sees half a file, and no file of the user's is ever taken as the
    temporary one. OSError: `path` cannot be written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # (`.predictions.k2j8x1.partial.csv`: the extension stays last, as some writers, torch.export's, expect.)
    descriptor, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=f".partial{path.suffix}")
    # (mkstemp's file is private, 0600: give it the mode of the file it replaces, or a new file's)
    os.fchmod(descriptor, stat.S_IMODE(path.stat().st_mode) if path.is_file() else 0o666 & ~UMASK)
    os.close(descriptor)
    temporary = Path(name)
    try:
        yield temporary
        temporary.replace(path)
    except (OSError, RuntimeError) as error:
        temporary.unlink(missing_ok=True)
        if isinstance(error, RuntimeError) and not failed_torch_write(error):
            raise
        # Named by the file it was to become, not by the temporary name; torch's writer says only "unexpected pos".
        errno_, reason = (error.errno, error.strerror) if isinstance(error, OSError) else (errno.EIO, "write failed")
        raise OSError(errno_, reason or str(error), str(path)) from None
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def failed_torch_write(error: RuntimeError) -> bool:
    """torch.save's archive writer failed to write (a full disk): its RuntimeError names its own source."""
    return "inline_container" in str(error) or "PytorchStreamWriter" in str(error)


def write_atomically(path: Path, write: Callable[[TextIO], Any]) -> None:
    """Have `write` fill the text file `path`, atomically (see replaced_atomically)."""
    with replaced_atomically(path) as temporary, temporary.open("w", newline="") as file:
        write(file)


def write_json(path: Path, record: Any) -> None:
    """`record` as indented JSON, atomically (status.json, statistics.json)."""
    write_atomically(path, lambda file: file.write(json.dumps(record, indent=1) + "\n"))


def write_csv_rows(path: Path, columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> None:
    """A header of `columns` and one line per row, atomically (summary.csv, coefficients.csv)."""

    def write(file: TextIO) -> None:
        writer = csv.DictWriter(file, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)

    write_atomically(path, write)


def in_multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def command_line_overrides() -> list[str] | None:
    """The overrides the job's config was composed with; None where Hydra did not compose it (the compose API)."""
    if not HydraConfig.initialized():
        return None
    return OmegaConf.to_container(HydraConfig.get().overrides.task, resolve=False)  # (as typed: `${...}` unresolved)
