"""export(cfg): a checkpoint as files that predict without this package: ONNX and a torch.export program.

Both take the model's features in raw units (a float32 matrix, any number of rows, the columns in the order
of model.json's `features`) and give the targets in raw units: the normalizations are inside the graph.
"""

import contextlib
import dataclasses
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import torch

from linreg import serving
from linreg.checkpoints import column_plan, find_checkpoint, load_model
from linreg.config import ExportSettings, checked
from linreg.data.columns import BLANK_WORDS, DATE_PARTS, MISSING_LEVEL, OTHER_LEVEL
from linreg.data.formats import FALSE_WORDS, TRUE_WORDS
from linreg.errors import ConfigError
from linreg.model import Regressor
from linreg.runtime import check_replaceable, replaced_atomically, writable_directory, write_atomically, write_json

log = logging.getLogger(__name__)
FILES = {"onnx": "model.onnx", "torch": "model.pt2"}


def export(cfg) -> dict[str, Path]:
    """The job behind scripts/export.py: model.onnx and/or model.pt2, and model.json, in the job's directory."""
    settings = checked(cfg, ExportSettings)
    path = find_checkpoint(settings.ckpt_path, settings.log_dir)
    model = load_model(path, trusted=settings.trusted_classes)
    output_dir = writable_directory("output_dir", settings.output_dir)
    formats = list(dict.fromkeys(f.name for f in settings.formats))  # (each once, in the order given)
    written = {name: output_dir / FILES[name] for name in formats}
    written |= {"description": output_dir / "model.json", "encoder": output_dir / "serving.py"}
    for file in written.values():  # (all checked before any is written)
        check_replaceable("output_dir", file, settings.overwrite, {"checkpoint": path})
    served = Served(model, column_plan(model)).eval()
    for export_format in formats:
        with replaced_atomically(written[export_format]) as temporary:
            (save_onnx if export_format == "onnx" else save_program)(served, temporary)
    write_json(written["description"], description(model, path))
    encoder = Path(serving.__file__).read_text(encoding="utf-8")  # (as it is: numpy and the standard library)
    write_atomically(written["encoder"], lambda file: file.write(encoder))
    files = "\n".join(f"  {name:<12} {file}" for name, file in written.items())
    log.info(f"Exported {path}:\n{files}")
    return written


INVERSES = {  # (serving.TRANSFORMS' inverses, as torch operations that ONNX and torch.export record)
    "log": torch.exp,
    "log10": lambda value: torch.pow(10.0, value),
    "log1p": torch.expm1,
    "sqrt": lambda value: torch.square(torch.clamp(value, min=0)),
}


class Served(torch.nn.Module):
    """The model as exported: its predictions in the targets' own units, a formula's transformed target
    (np.log(price)) transformed back as predict.py does."""

    def __init__(self, model: Regressor, plan: dict) -> None:
        super().__init__()
        self.model = model
        self.data = dataclasses.replace(model.data, target_names=list(plan["targets"]))  # (the outputs' names)
        targets = (plan.get("formula") or {}).get("targets", [])
        self.inverses = [INVERSES[target["transform"]] if target["transform"] else None for target in targets]

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        predictions = self.model(features)
        if not any(self.inverses):
            return predictions
        columns = [f(column) if f else column for f, column in zip(self.inverses, predictions.unbind(1), strict=True)]
        return torch.stack(columns, dim=1)


def description(model: Regressor, checkpoint: Path) -> dict:
    """What a program that loads the exported model needs to know: the inputs' order and the outputs', and how
    raw rows become those inputs (`columns`, which serving.py reads)."""
    plan = column_plan(model)
    plain = {"kind": "number", "fill": None, "indicator": False}
    encoded = [entry["column"] for entry in plan["features"] if entry | plain != entry]
    dtype = str(model_dtype(model)).removeprefix("torch.")
    return {
        "checkpoint": str(checkpoint),
        "input": {"name": "features", "dtype": dtype, "shape": ["rows", len(model.data.feature_names)]},
        "features": list(model.data.feature_names),
        "output": {"name": "predictions", "dtype": dtype, "shape": ["rows", len(model.data.target_names)]},
        "targets": list(plan["targets"]),  # (a formula's np.log(price) comes out as price)
        # The table's columns that training encoded (text as city=Paris, ..., dates, filled blanks): a program
        # that feeds the exported model encodes them as predict.py does. Empty: the features are the columns.
        "encoded_columns": encoded,
        "columns": serving_plan(plan),
    }


def serving_plan(plan: dict) -> dict:
    """The checkpoint's column plan with every default written out (date parts, drops: a plan of an older
    checkpoint leaves them out) and the words the cells are read with, so that serving.py needs nothing else."""
    entries = [
        {**entry, "drop": entry.get("drop", [])}
        | ({"parts": entry.get("parts", DATE_PARTS)} if entry["kind"] == "date" else {})
        for entry in plan["features"]
    ]
    words = {
        "blank": sorted(BLANK_WORDS),
        "true": TRUE_WORDS,
        "false": FALSE_WORDS,
        "missing_level": MISSING_LEVEL,
        "other_level": OTHER_LEVEL,
    }
    return {**plan, "features": entries, "words": words}


def example_rows(model: Served) -> tuple[torch.Tensor]:
    """Two rows of features in the model's own type: the graph is traced on them, with the number of rows left
    free."""
    return (torch.zeros(2, len(model.data.feature_names), dtype=model_dtype(model)),)


def model_dtype(model: torch.nn.Module) -> torch.dtype:
    """float32, or float64 for a model trained with trainer.precision=64-true."""
    return next(model.parameters()).dtype


def any_rows() -> tuple[dict[int, torch.export.Dim]]:
    return ({0: torch.export.Dim("rows", min=1)},)


def save_program(model: Served, path: Path) -> None:
    """A torch.export program: `torch.export.load(path).module()(features)`."""
    torch.export.save(torch.export.export(model, example_rows(model), dynamic_shapes=any_rows()), path)


def save_onnx(model: Served, path: Path) -> None:
    """ONNX with a free number of rows, the feature and target names in its metadata."""
    try:
        import onnxscript  # noqa: F401  (torch's ONNX exporter builds the graph with it)
    except ImportError:
        raise ConfigError(
            'formats=[onnx] needs the onnx packages: pip install -e ".[export]" (or formats=[torch] for model.pt2).'
        ) from None
    with quiet_onnx_exporter():
        program = torch.onnx.export(
            model,
            example_rows(model),
            input_names=["features"],
            output_names=["predictions"],
            dynamic_shapes=any_rows(),
            dynamo=True,
            verbose=False,
        )
    program.model.metadata_props["features"] = json.dumps(list(model.data.feature_names))
    program.model.metadata_props["targets"] = json.dumps(list(model.data.target_names))
    program.save(str(path))


@contextlib.contextmanager
def quiet_onnx_exporter() -> Iterator[None]:
    """Without the exporter's notices: operators of libraries this model does not use (torchvision), and each
    pass of the graph optimizer."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "onnxscript", "onnx_ir")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
