"""Every kind of bad input a user can type or give, through the scripts they run.

Each case runs `python scripts/<script>.py <overrides>` in this process (the script's own `main`, Hydra's
argument parsing included; no new Python per case) in a folder holding a trained run, good and bad tables,
crafted checkpoints and files of the user's own. Each ends with exit status 1 and one paragraph naming the
culprit, without a traceback, and leaves every file outside the job's own directory as it was (the folder is
hashed before and after). The settings that train.py's settings check refuses are tested on the config Hydra
composes from the same overrides instead (SETTINGS: no script runs), a few of them also end to end.
"""

import hashlib
import json
import logging
import os
import runpy
import shutil
import stat
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from conftest import ROOT, SGD_STEPS
from hydra import compose, initialize_config_dir

from linreg.assembly import check_settings
from linreg.errors import ConfigError

SCRIPTS = ROOT / "scripts"
RUN = "logs/train/run"  # the trained run in every case's folder
CHECKPOINT = f"{RUN}/checkpoints/last.ckpt"
CSV = ["data=csv", "data.path=table.csv", "data.targets=[y]"]
STREAM = ["data.stream=true", "data.batch_size=2"]
MIXED = ["data=csv", "data.path=mixed.parquet", "data.targets=[y]", *STREAM]  # a text column, a blank cell
HYDRA_ERROR_END = "Set the environment variable HYDRA_FULL_ERROR=1 for a complete stack trace."


def run_script(script: str, *overrides: str) -> int:
    """`python scripts/<script>.py <overrides>` in this process; its exit status. The logging set-up Hydra gives
    each job is undone afterwards, as the end of the process would, so the tests that follow see their own."""
    from hydra.core.global_hydra import GlobalHydra

    argv = sys.argv
    sys.argv = [str(SCRIPTS / f"{script}.py"), *overrides]
    loggers = [logging.root, *(v for v in logging.root.manager.loggerDict.values() if isinstance(v, logging.Logger))]
    saved = [(lg, lg.handlers[:], lg.level, lg.propagate, lg.disabled) for lg in loggers]
    try:
        runpy.run_path(sys.argv[0], run_name="__main__")
        return 0
    except SystemExit as stop:
        return stop.code or 0
    finally:
        sys.argv = argv
        GlobalHydra.instance().clear()
        for logger, handlers, level, propagate, disabled in saved:
            for handler in set(logger.handlers) - set(handlers):
                handler.close()
            logger.handlers[:], logger.level, logger.propagate, logger.disabled = handlers, level, propagate, disabled


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    """A real run of the default table (two epochs of gradient steps), trained once per test process."""
    folder = tmp_path_factory.mktemp("trained") / "run"
    overrides = [*SGD_STEPS, "trainer.max_epochs=2", "~logger", "~callbacks.plots", "print_config=none"]
    assert run_script("train", f"hydra.run.dir={folder}", *overrides) == 0
    return folder


TABLES = {
    "table.csv": "x,y\n1,2\n2,3\n3,5\n4,4\n5,6\n6,8\n",
    "new.csv": "t_u\n50\n60\n",
    "labelled.csv": "t_u,t_c\n50,10\n60,15\n",
    "out.csv": "the user's own file\n",
    "out.csv.partial": "the user's own file, whose name looks temporary\n",
    "notes.txt": "keep me\n",
    "afile": "a file, where a folder is expected\n",
    "folder/readme.txt": "a folder that is not a table\n",
    "latin1.csv": b"x,y\n\xe9t\xe9,2\n1,3\n",
    "binary.csv": b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe\xfa binary",
    "empty.csv": "",
    "header.csv": "x,y\n",
    "text.csv": "x,y\n1,2\nabc,3\n4,5\n",
    "blank.csv": "x,y\n1,2\n,3\n5,6\n7,8\n",
    "inf.csv": "x,y\n1,2\n4,inf\n5,6\n",
    "huge.csv": "x,y\n1,2\n2,1e300\n3,4\n",
    "float32.csv": "x,y\n1,2\n2,1e39\n3,4\n",
    "numbers_as_header.csv": "1,2\n3,4\n5,6\n",
    "duplicate.csv": "x,x,y\n1,2,3\n4,5,6\n7,8,9\n",
    "one_row.csv": "x,y\n1,2\n",
    "constant.csv": "x,y\n1,5\n2,5\n3,5\n4,5\n5,5\n",
    "dates.csv": "x,when,y\n1,2024-01-01,2\n2,yesterday,3\n3,2024-01-03,4\n",
    "broken.parquet": "not parquet at all",
    "new_text.csv": "t_u\n50\nabc\n",
    "new_huge.csv": "t_u\n1e39\n",
    "new_latin1.csv": b"t_u\n\xe950\n",
    "new_header.csv": "t_u\n",
    "other.csv": "a,b\n1,2\n",
    "deploy/model.onnx": "the user's own exported model\n",
    "new_taken.csv": "t_u,t_c_predicted\n50,1\n",
    "claimed/.linreg-run": "",
    "mixed_dir/b.csv": "x,y\n9,18\n",  # beside a .parquet file (the workspace writes it)
    "empty.ckpt": "",
    "text.ckpt": "x,y\n1,2\n",
}


@pytest.fixture
def workspace(tmp_path, trained_run, monkeypatch) -> Path:
    """The case's folder (the working directory): a trained run under logs/, the tables and files above, a
    named pipe, a loop of symbolic links, a truncated and a code-running checkpoint."""
    shutil.copytree(trained_run, tmp_path / RUN)
    for name, content in TABLES.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    mixed = {
        "x": [1.0, 2, 3, 4, 5, 6],
        "gap": [1.0, 2, None, 4, 5, 6],
        "name": list("abcdef"),
        "y": [2.0, 3, 5, 4, 6, 8],
    }
    pd.DataFrame(mixed).to_parquet(tmp_path / "mixed.parquet")
    (tmp_path / "parts").mkdir()  # a directory of Parquet files whose columns differ
    pd.DataFrame({"x": [1.0, 2, 3], "y": [2.0, 3, 5]}).to_parquet(tmp_path / "parts" / "a.parquet")
    pd.DataFrame({"z": [1.0, 2, 3], "y": [2.0, 3, 5]}).to_parquet(tmp_path / "parts" / "b.parquet")
    pd.DataFrame({"x": [1.0, 2, 3], "y": [2.0, 3, 5]}).to_parquet(tmp_path / "mixed_dir" / "a.parquet")
    os.mkfifo(tmp_path / "pipe")
    (tmp_path / "loop.csv").symlink_to(tmp_path / "loop2.csv")
    (tmp_path / "loop2.csv").symlink_to(tmp_path / "loop.csv")
    (tmp_path / "truncated.ckpt").write_bytes((tmp_path / CHECKPOINT).read_bytes()[:2000])
    torch.save(RunsCode(tmp_path / "code_ran"), tmp_path / "pickle.ckpt")
    torch.save(hostile_payloads(tmp_path)["builtins.open"], tmp_path / "open.ckpt")
    real = torch.load(tmp_path / CHECKPOINT, weights_only=True)
    torch.save({**real, "state_dict": "weights"}, tmp_path / "malformed.ckpt")
    torch.save(
        {**real, "state_dict": {**real["state_dict"], "feature_normalizer.factor": torch.ones(3)}},
        tmp_path / "shape.ckpt",
    )
    weight = real["state_dict"]["net.weight"]
    nan_weights = {**real["state_dict"], "net.weight": torch.full_like(weight, float("nan"))}
    torch.save({**real, "state_dict": nan_weights}, tmp_path / "nan.ckpt")
    torch.save({key: value for key, value in real.items() if key != "pytorch-lightning_version"}, tmp_path / "old.ckpt")
    (tmp_path / "zeros.ckpt").write_bytes(bytes(100_000))
    data = real["hyper_parameters"]["data"]
    crafted_plan = {**data["columns"], "features": [{"column": "t_u", "kind": "category"}]}  # (no levels)
    crafted = {**real["hyper_parameters"], "data": {**data, "columns": crafted_plan}}
    torch.save({**real, "hyper_parameters": crafted}, tmp_path / "plan.ckpt")
    monkeypatch.chdir(tmp_path)
    return tmp_path


class RunsCode:
    """Unpickled, it would run a shell command that leaves a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def hostile_payloads(folder: Path) -> dict[str, dict]:
    """Config-like dictionaries that would write the user's notes.txt or run a command if anything
    instantiated them."""
    notes, marker = str(folder / "notes.txt"), str(folder / "code_ran")
    return {
        "builtins.open": {"_target_": "builtins.open", "file": notes, "mode": "w"},
        "shutil.copyfile": {"_target_": "shutil.copyfile", "src": "/etc/hostname", "dst": notes},
        "os.system": {"_target_": "os.system", "command": f"touch {marker}"},
        "subprocess.run": {"_target_": "subprocess.run", "args": ["touch", marker]},
        "pathlib.Path.write_text": {"_target_": "pathlib.Path.write_text", "self": notes, "data": "x"},
    }


def fingerprint(folder: Path, job: Path) -> dict[str, str]:
    """What each entry under `folder` is (a file's content digest, a link's target, a pipe), except the job's
    own directory."""
    found = {}
    for parent, folders, files in os.walk(folder):
        folders[:] = [name for name in folders if Path(parent, name) != job]
        for name in folders + files:
            path = Path(parent, name)
            mode = path.lstat().st_mode
            if stat.S_ISREG(mode):
                found[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
            elif stat.S_ISLNK(mode):
                found[str(path)] = "link to " + os.readlink(path)
            else:
                found[str(path)] = stat.filemode(mode)
    return found


@pytest.fixture
def run_case(workspace, capsys, monkeypatch):
    """Run a script on the workspace: its exit status, what it printed on stderr and stdout; asserts that
    nothing outside its job directory changed."""
    from hydra._internal.hydra import Hydra
    from hydra.types import RunMode

    # Hydra composes the whole config twice per command, the first time only to learn whether it is a multirun
    # (-m); these are single runs. Saying so halves each case's time; the second composition, which the job
    # gets, is unchanged and raises the same errors.
    monkeypatch.setattr(Hydra, "get_mode", lambda self, config_name, overrides: RunMode.RUN)

    def run(script: str, *overrides: str) -> tuple[int, str, str]:
        job = workspace / "job"
        before = fingerprint(workspace, job)
        status = run_script(script, f"hydra.run.dir={job}", *overrides)
        err, out = capsys.readouterr()[::-1]
        assert fingerprint(workspace, job) == before, "a file outside the job's directory changed"
        assert "Traceback" not in err + out
        return status, err, out

    return run


def case(script: str, overrides: list[str], words: list[str], name: str, by_hydra: bool = False):
    """One bad input; `by_hydra`: Hydra itself refuses it before the job starts, with its own message."""
    return pytest.param(script, overrides, words, by_hydra, id=f"{script}: {name}")


CASES = [
    # Settings of train.py: types, ranges and combinations
    case("train", ["data.val_fraction=-0.1"], ["data.val_fraction=-0.1", "at least 0"], "negative fraction"),
    case("train", ["data.targets=[]"], ["data.targets is not set", "data.formula"], "no targets"),
    case("train", ["data.features=[nope]"], ["'nope' (data.features)", "its columns are: t_u, t_c"], "unknown"),
    case("train", ["data.targets=price"], ["'price' (data.targets)", "its columns are: t_u, t_c"], "one name"),
    case("train", ["data=csv"], ["data.path is required"], "csv without a path"),
    case("train", ["data=crops", "data.val_fraction=0.6", "data.test_fraction=0.3"], ["5 rows", "too few"], "few"),
    case("train", ["trainer.devices=0"], ["trainer (lightning.pytorch.Trainer) refused", "devices"], "0 devices"),
    case("train", ["trainer.devices=abc"], ["trainer (lightning.pytorch.Trainer) refused", "devices"], "devices"),
    case("train", ["+trainer.foo=1"], ["trainer (lightning.pytorch.Trainer) refused", "'foo'"], "unknown argument"),
    case("train", ["optimizer=adam", "optimizer.lr=auto"], ["optimizer.lr=auto", "Adam takes a number"], "auto lr"),
    case(
        "train", ["optimizer=adam", "optimizer.weight_decay=-1"], ["optimizer (torch.optim.Adam)", "weight_decay"], "wd"
    ),
    case("train", ["optimizer=adam", "optimizer.betas=[2,3]"], ["optimizer (torch.optim.Adam)", "beta"], "betas"),
    case(
        "train", ["optimizer=lbfgs", "optimizer.history_size=0"], ["optimizer (torch.optim.LBFGS) refused"], "history"
    ),
    case("train", ["+optimizer.foo=1"], ["optimizer (torch.optim.LBFGS) refused", "'foo'"], "unknown optimizer key"),
    case(
        "train",
        ["scheduler=plateau", "data.val_fraction=0.2", "scheduler.factor=2"],
        ["scheduler (torch.optim.lr_scheduler.ReduceLROnPlateau) refused", "Factor"],
        "plateau factor",
    ),
    case(
        "train",
        ["scheduler=plateau", "data.val_fraction=0.2", "scheduler.monitor=val/nope"],
        ["scheduler.monitor is val/nope", "val/loss"],
        "misspelt monitor",
    ),
    case("train", ["loss=hinge"], ["Could not find 'loss/hinge'", "huber", "mse"], "unknown loss", by_hydra=True),
    case("train", ["loss=quantile", "loss.quantile=2"], ["loss (linreg.losses.QuantileLoss) refused"], "loss setting"),
    case("train", ["loss=huber", "loss.delta=-1"], ["loss (torch.nn.HuberLoss) refused", "delta"], "loss value"),
    case(
        "train",
        ["scheduler=onecycle", "optimizer=adam", "optimizer.lr=0.1", "trainer.max_epochs=-1"],
        ["scheduler.total_steps=null takes the run's length", "trainer.max_epochs"],
        "one cycle without end",
    ),
    case("train", ["model.net._target_=nope.Net"], ["nope.Net is not one of this template's classes"], "untrusted"),
    case("train", ["model.net._target_=nope.Net", "trusted_classes=[nope.Net]"], ["nope.Net names no class"], "no net"),
    case("train", ["model=mlp", "model.net.dropout=1"], ["model.net (linreg.nets.MLP) refused", "dropout"], "mlp"),
    case("train", ["model.l1=0.1"], ["model.l1=0.1", "optimizer=sgd"], "l1 with L-BFGS"),
    case("train", ["+model.foo=1"], ["model (linreg.model.Regressor) refused", "'foo'"], "unknown model key"),
    case("train", ["+model.init.weight=[1,2,3]"], ["model.init.weight has shape [3]", "[1, 1]"], "initial weights"),
    case("predict", [f"ckpt_path={CHECKPOINT}", "input=new.csv", "output=p.xlsx"], ["writes CSV", "not .xlsx"], "xlsx"),
    case("train", [*CSV[:1], "data.path=mixed_dir", "data.targets=[y]", *STREAM], ["1 other file(s) (b.csv)"], "mix"),
    case("predict", ["ckpt_path=plan.ckpt", "input=new.csv"], ["column plan's entry for 't_u' is malformed"], "plan"),
    case("train", ["ckpt_path=old.ckpt"], ["not the training state", "(pytorch-lightning_version)"], "no version"),
    case("eval", ["ckpt_path=zeros.ckpt"], ["zeros.ckpt is not a checkpoint", "not a PyTorch archive"], "zeros"),
    case("train", ["data.path=${nope}"], ["The setting data.path could not be resolved", "'nope' not found"], "${}"),
    case(
        "train",
        ["data.path=${oc.env:LINREG_NO_SUCH_VARIABLE}"],
        ["data.path could not be resolved", "'LINREG_NO_SUCH_VARIABLE' not found"],
        "an unset environment variable",
    ),
    case(
        "train",
        ["data=synthetic", "data.n_samples=8", "data.n_features=9", "statistics.max_features=5"],
        ["9 features", "statistics.max_features=5", "6 training rows are fewer than the 10", "data.exclude"],
        "a table wider than the analysis takes",
    ),
    case("train", ["callbacks.convergence.stop=2"], ["callbacks.convergence (linreg.callbacks.Converg"], "stop"),
    case("train", ["callbacks.last_checkpoint.interval_seconds=-1"], ["interval_seconds=-1"], "save interval"),
    case("train", ["callbacks.fit_path.max_coefficients=-1"], ["max_coefficients=-1"], "coefficient curves"),
    case("train", ["callbacks.best_checkpoint.save_top_k=abc"], ["callbacks.best_checkpoint", "refused"], "top k"),
    case("train", ["callbacks.plots=5"], ["callbacks.plots=5 is not the settings of a class"], "a number as callback"),
    case("train", ["+callbacks.x=1"], ["callbacks.x=1", "~callbacks.x"], "an added callback key"),
    case("train", ["+logger.x=1"], ["logger.x=1", "~logger.x"], "an added logger key"),
    case("train", ["+tune.x=1"], ["tune=x: 1 is not the settings of a class"], "tune without _target_"),
    case("eval", ["+logger.x=1"], ["logger.x=1", "~logger.x"], "an added logger key"),
    case("train", ["data=synthetic", "data.n_samples=100000000000"], ["ran out of memory", "data.n_samples"], "3 TB"),
    case("train", ["cv.folds=1000"], ["cv.folds=1000", "11"], "more folds than rows"),
    case("train", ["cv.folds=3", "ckpt_path=last"], ["ckpt_path=last resumes one run", "cv.folds=3"], "cv resume"),
    case("train", ["data.val_fraction=0", "optimized_metric=val/r2"], ["optimized_metric=val/r2"], "no val split"),
    case("train", ["data.val_fraction=0.2", "optimized_metric=val/nope"], ["optimized_metric is val/nope"], "metric"),
    case("train", ["output_dir=afile/run"], ["output_dir=afile/run", "afile is a file, not a folder"], "output"),
    # Tables given to train.py
    case("train", ["data=csv", "data.path=missing.csv", "data.targets=[y]"], ["missing.csv", "no such file"], "none"),
    case("train", ["data=csv", "data.path=folder", "data.targets=[y]"], ["folder", "is a directory"], "a folder"),
    case("train", ["data=csv", "data.path=pipe", "data.targets=[y]"], ["pipe", "is not a regular file"], "a pipe"),
    case("train", ["data=csv", "data.path=loop.csv", "data.targets=[y]"], ["symbolic link that leads to no"], "loop"),
    case("train", ["data=csv", "data.path=latin1.csv", "data.targets=[y]"], ["not UTF-8", "save the file as"], "latin"),
    case("train", ["data=csv", "data.path=binary.csv", "data.targets=[y]"], ["could not be read as a CSV"], "binary"),
    case("train", ["data=csv", "data.path=empty.csv", "data.targets=[y]"], ["empty.csv", "is empty"], "empty"),
    case("train", ["data=csv", "data.path=header.csv", "data.targets=[y]"], ["has a header (x, y) but no rows"], "hdr"),
    case("train", [*CSV[:2], "data.targets=[price]"], ["price", "its columns are: x, y"], "missing target"),
    case("train", [*CSV, "data.features=[x,y]"], ["y", "data.targets and in data.features"], "target as feature"),
    case("train", [*CSV[:1], "data.path=text.csv", "data.targets=[y]"], ["Column x", "line 3", "'abc'"], "text"),
    case("train", [*CSV[:1], "data.path=blank.csv", "data.targets=[y]"], ["x (1 blank)", "data.impute="], "blanks"),
    case("train", [*CSV[:1], "data.path=inf.csv", "data.targets=[y]"], ["Column y", "holds inf on line 3"], "inf"),
    case("train", [*CSV[:1], "data.path=huge.csv", "data.targets=[y]"], ["Column y", "line 3", "32-bit"], "1e300"),
    case("train", [*CSV[:1], "data.path=float32.csv", "data.targets=[y]"], ["Column y", "line 3", "32-bit"], "1e39"),
    case("train", [*CSV[:1], "data.path=numbers_as_header.csv", "data.targets=[y]"], ["its columns are: 1, 2"], "1,2"),
    case("train", [*CSV[:1], "data.path=duplicate.csv", "data.targets=[y]"], ["more than one column named 'x'"], "x,x"),
    case("train", [*CSV[:1], "data.path=constant.csv", "data.targets=[y]"], ["y (5) hold one value"], "constant y"),
    case("train", [*CSV[:1], "data.path=one_row.csv", "data.targets=[y]"], ["1 rows", "too few"], "one row"),
    case("train", [*CSV[:1], "data.path=dates.csv", "data.targets=[y]", "data.dates=[when]"], ["'yesterday'"], "date"),
    case("train", [*CSV[:1], "data.path=broken.parquet", "data.targets=[y]"], ["as a Parquet file"], "parquet"),
    # A table streamed a row group at a time (data.stream=true)
    case("train", [*CSV, *STREAM], ["data.stream=true reads Parquet files", "table.csv"], "stream a CSV"),
    case("train", [*MIXED], ["Column name of", "holds text", "data.exclude=[name]"], "stream text"),
    case("train", [*MIXED, "data.exclude=[name]"], ["blank cell in column gap, row 3", "data.impute=drop"], "blank"),
    case("train", [*MIXED, "data.exclude=[name,gap]", "cv.folds=2"], ["cv.folds needs the table in memory"], "cv"),
    case("train", [*CSV[:1], "data.path=parts", "data.targets=[y]", *STREAM], ["b.parquet lacks column(s) x"], "files"),
    case("train", [*CSV, "data.categorical=[zzz]"], ["'zzz' (data.categorical)"], "unknown categorical"),
    case("train", [*CSV, "data.exclude=[x]"], ["no feature column left"], "everything excluded"),
    # Checkpoints given to train.py to resume
    case("train", ["ckpt_path=nowhere/last.ckpt"], ["ckpt_path=nowhere/last.ckpt", "no such checkpoint"], "none"),
    case("train", ["ckpt_path=folder"], ["ckpt_path=folder", "no such checkpoint"], "a folder as checkpoint"),
    case("train", ["ckpt_path=shape.ckpt"], ["normalized differently", "allow_changed_data"], "statistics' shape"),
    case(
        "train",
        ["ckpt_path=shape.ckpt", "allow_changed_data=true"],
        ["shape.ckpt is not a checkpoint this template can load"],
        "allowed, statistics of another shape",
    ),
    case("train", [f"ckpt_path={RUN}", "data=crops"], ["cannot resume this run", "feature columns"], "other columns"),
    case("train", [f"ckpt_path={RUN}", "data.normalize=minmax"], ["normalized differently", "allow_changed_data"], "n"),
    case("train", [f"ckpt_path={RUN}", "data.val_fraction=0.3"], ["its rows differ", "allow_changed_data=true"], "r"),
    case("train", ["~optimizer"], ["The setting optimizer is missing", "~optimizer"], "optimizer removed"),
    case("train", ["~data"], ["The setting data is missing"], "data removed"),
    case("train", ["~trainer"], ["The setting trainer is missing"], "trainer removed"),
    # Hydra's own errors for the keys and groups of the configs
    case(
        "train",
        ["optimizer=nadam"],
        ["Could not find 'optimizer/nadam'", "adam", "sgd"],
        "unknown optimizer",
        by_hydra=True,
    ),
    case("train", ["data=nope"], ["Could not find 'data/nope'", "thermometer"], "unknown table", by_hydra=True),
    case("train", ["trainer.max_epoch=5"], ["trainer.max_epoch", "not in struct"], "misspelt key", by_hydra=True),
    case("train", ["data.val_fraction=="], ["data.val_fraction=="], "unparsable override", by_hydra=True),
    case("eval", ["logger=nope"], ["Could not find 'logger/nope'", "csv"], "unknown logger", by_hydra=True),
    # predict.py
    case("predict", [], ["input is required"], "no input"),
    case("predict", ["input=missing.csv"], ["input=missing.csv", "no such file"], "missing input"),
    case("predict", ["input=folder"], ["input=folder", "directory"], "a folder as input"),
    case("predict", ["input=pipe"], ["input=pipe", "not a regular file"], "a pipe as input"),
    case("predict", ["input=/dev/null"], ["input=/dev/null", "not a regular file"], "a device as input"),
    case("predict", ["input=loop.csv"], ["symbolic link that leads to no file"], "a loop as input"),
    case("predict", ["input=new_latin1.csv"], ["not UTF-8", "save the file as UTF-8"], "latin-1 input"),
    case("predict", ["input=empty.csv"], ["input=empty.csv is empty"], "empty input"),
    case("predict", ["input=new_header.csv"], ["has a header (t_u) but no rows"], "header-only input"),
    case("predict", ["input=other.csv"], ["'t_u' (the checkpoint's features)", "its columns are: a, b"], "columns"),
    case("predict", ["input=new_text.csv"], ["Column t_u", "line 3", "'abc'"], "text in a feature"),
    case("predict", ["input=new_huge.csv"], ["Column t_u", "line 2", "32-bit"], "beyond float32"),
    case("predict", ["input=new.csv", "output=new.csv", "overwrite=true"], ["is the input file"], "output=input"),
    case("predict", ["input=new.csv", "output=out.csv"], ["output=out.csv exists already", "overwrite=true"], "out"),
    case(
        "predict",
        ["input=new.csv", f"ckpt_path={CHECKPOINT}", f"output={CHECKPOINT}", "overwrite=true"],
        [f"output={CHECKPOINT} is the checkpoint this job reads"],
        "over its checkpoint",
    ),
    case("export", ["output_dir=deploy"], ["output_dir=deploy/model.onnx exists already", "overwrite=true"], "exists"),
    case("predict", ["input=new_taken.csv"], ["has a column t_c_predicted already", "rename"], "taken column"),
    *(
        case(script, [*needs, "ckpt_path=nan.ckpt"], ["nan.ckpt holds values that are not finite", "net.weight"], "nan")
        for script, needs in {"eval": [], "predict": ["input=new.csv"], "export": []}.items()
    ),
    case("predict", ["input=new.csv", "output=folder"], ["output=folder is a folder"], "a folder as output"),
    case("predict", ["input=new.csv", "output=afile/p.csv"], ["afile is a file, not a folder"], "under a file"),
    case("predict", ["input=new.csv", "interval=1.5"], ["interval=1.5", "between 0 and 1"], "interval"),
    case("predict", ["input=new.csv", "interval=abc"], ["interval='abc'", "a number or null"], "text interval"),
    case("predict", ["input=new.csv", "overwrite=maybe"], ["overwrite='maybe'", "true or false"], "overwrite"),
    case("predict", ["input=new.csv", "ckpt_path=shape.ckpt"], ["shape.ckpt is not a checkpoint"], "shapes"),
    case("predict", ["input=new.csv", "ckpt_path=nowhere.ckpt"], ["no such checkpoint"], "missing checkpoint"),
    case("predict", ["input=new.csv", "log_dir=nowhere"], ["no checkpoints/last.ckpt under"], "no runs"),
    case("predict", ["input=new.csv", "ckpt_path=best", "log_dir=nowhere"], ["no checkpoints/last.ckpt"], "best"),
    # eval.py
    case("eval", ["split=nope"], ["split='nope'", "test, val, train"], "unknown split"),
    case("eval", ["split=val"], ["has no val split", "data.val_fraction was 0"], "absent split"),
    case("eval", ["input=new.csv"], ["'t_c' (the checkpoint's targets"], "no target column"),
    case("eval", ["input=missing.csv"], ["input=missing.csv", "no such file"], "missing input"),
    case("eval", ["input=new_latin1.csv"], ["not UTF-8"], "latin-1 input"),
    case("eval", ["log_dir=nowhere"], ["no checkpoints/last.ckpt under"], "no runs"),
    # export.py
    case("export", ["formats=[xls]"], ["formats=['xls']", "a list of onnx, torch"], "unknown format"),
    case("export", ["formats=[]"], ["formats=[]", "at least one of onnx, torch"], "no format"),
    case("export", ["output_dir=afile/x"], ["output_dir=afile/x", "afile is a file, not a folder"], "under a file"),
]


# Files that are no checkpoint this template can load, given to every script that takes one.
UNLOADABLE = {
    "empty.ckpt": "empty",
    "truncated.ckpt": "truncated",
    "text.ckpt": "a table",
    "pickle.ckpt": "a pickle that runs code",
    "open.ckpt": "a dict with a _target_",
    "malformed.ckpt": "state_dict not a dict",
}
CASES += [
    case(script, [*needs, f"ckpt_path={name}"], [f"{name} is not a checkpoint this template can load"], f"{what} ckpt")
    for script, needs in {"train": [], "eval": [], "predict": ["input=new.csv"], "export": []}.items()
    for name, what in UNLOADABLE.items()
]


def setting(overrides: list[str], words: list[str], name: str):
    """A bad setting of train.py that its settings check refuses (linreg.assembly.check_settings), tested on the
    composed config; CASES keep a few of the kind, which show the script's whole path to it."""
    return pytest.param(overrides, words, id=name)


SETTINGS = [
    setting(["data.val_fraction=0.6", "data.test_fraction=0.4"], ["leaves no training rows"], "no rows left"),
    setting(["data.batch_size=0"], ["data.batch_size=0", "1 or more rows"], "batch of 0"),
    setting(["data.batch_size=0.5"], ["data.batch_size=0.5", "a whole number or null"], "fractional batch"),
    setting(["data.shuffle=maybe"], ["data.shuffle='maybe'", "true or false"], "not a boolean"),
    setting(["data.num_workers=-1"], ["data.num_workers=-1"], "negative workers"),
    setting(["data.normalize=zscore"], ["data.normalize='zscore'", "none, scale, standardize, minmax"], "norm"),
    setting(["data.normalize=scale", "data.scale=0"], ["data.scale=0", "non-zero"], "scale of 0"),
    setting(["data.features=[]"], ["data.features is empty", "data.features=null"], "no features"),
    setting(["data.targets=[t_c,t_c]"], ["data.targets names t_c more than once"], "a target twice"),
    setting(["data.features=[t_u,t_u]"], ["data.features names t_u more than once"], "a feature twice"),
    setting(["trainer.max_epochs=0"], ["trainer.max_epochs=0"], "no epochs"),
    setting(["trainer.max_steps=-5"], ["trainer.max_steps=-5", "-1 for no limit"], "negative steps"),
    setting(["trainer.gradient_clip_val=-1"], ["trainer.gradient_clip_val=-1", "0 or more"], "clipping"),
    setting(["trainer.accumulate_grad_batches=0"], ["trainer.accumulate_grad_batches=0"], "accumulate 0"),
    setting(["trainer.check_val_every_n_epoch=0"], ["trainer.check_val_every_n_epoch=0"], "validate every 0"),
    setting(["optimizer.lr=abc"], ["optimizer.lr='abc'", "a number or auto"], "text lr"),
    setting(["optimizer.lr=-0.1"], ["optimizer.lr=-0.1", "above 0"], "negative lr"),
    setting(["data.scale=1e-45"], ["data.scale=1e-45 is out of range", "1e-38"], "scale beyond float32"),
    setting(["model.l1=-1"], ["model.l1=-1.0", "0 (no penalty) or more"], "negative l1"),
    setting(["model.l2=abc"], ["model.l2='abc'", "a number"], "text l2"),
    setting(["seed=-1"], ["seed=-1", "from 0 to 4294967295"], "negative seed"),
    setting(["print_config=abc"], ["print_config='abc'", "overrides, full, none"], "print_config"),
    setting(["tags=5"], ["tags=5", "a list"], "tags"),
    setting(["statistics.ci=1.5"], ["statistics.ci=1.5", "between 0 and 1"], "confidence"),
    setting(["statistics.max_features=0"], ["statistics.max_features=0", "1 or more"], "max features 0"),
    setting(["convergence.rtol=-1"], ["convergence.rtol=-1.0", "above 0"], "tolerance"),
    setting(["model.l2=inf"], ["model.l2=inf is not a finite number"], "inf penalty"),
    setting(["data.normalize=scale", "data.scale=nan"], ["data.scale=nan is not a finite"], "nan scale"),
    setting(["trainer.gradient_clip_val=inf"], ["trainer.gradient_clip_val=inf"], "inf clipping"),
    setting(["cv.folds=1"], ["cv.folds=1", "2 or more folds"], "one fold"),
    setting(["cv.folds=abc"], ["cv.folds='abc'", "a whole number"], "text folds"),
    setting([*STREAM, "data.num_workers=2"], ["cannot take data.num_workers=2"], "stream, workers"),
    setting([*STREAM, "data.impute=mean"], ["cannot take data.impute=mean", "only drop"], "stream, impute"),
    setting([*STREAM, "data.shuffle_buffer=-1"], ["data.shuffle_buffer=-1", "0 or more"], "stream, buffer"),
    setting([*STREAM, "data.categorical=[t_u]"], ["cannot take data.categorical or data.dates"], "stream, levels"),
    setting(["data=synthetic", "data.correlation=1"], ["data.correlation=1.0", "below 1"], "correlation"),
    setting(["data=synthetic", "data.n_samples=0"], ["data.n_samples=0", "1 or more"], "no samples"),
    setting(["trainer.max_epochs=abc"], ["trainer.max_epochs='abc'", "a whole number"], "text epochs"),
    setting(["optimizer=sgd", "optimizer.momentum=1.5"], ["optimizer.momentum=1.5", "below 1"], "momentum"),
    setting(["scheduler=step", "scheduler.interval=week"], ["scheduler.interval='week'", "epoch, step"], "when"),
    setting(["scheduler=step", "scheduler.step_size=0"], ["scheduler.step_size=0", "1 or more"], "step size"),
    setting(["scheduler=step", "scheduler.frequency=0"], ["scheduler.frequency=0", "1 or more"], "frequency"),
    setting(["scheduler=cosine", "scheduler.T_max=0"], ["scheduler.T_max=0", "1 or more"], "cosine length"),
    setting(["seed=99999999999999999999"], ["seed=99999999999999999999", "4294967295"], "huge seed"),
    setting(["optimizer=sgd", "optimizer.lr=inf"], ["optimizer.lr=inf is not a finite number"], "inf lr"),
    setting(["data=synthetic", "data.noise=inf"], ["data.noise=inf is not a finite number"], "inf noise"),
    setting(["data.stream=true"], ["data.stream=true cannot take data.batch_size=null"], "stream, full batch"),
    setting([*CSV, "data.impute=foo"], ["data.impute='foo'", "mean, median"], "imputation"),
    setting([*CSV, "data.sep=ab"], ["data.sep='ab'", "one character"], "separator"),
]


@pytest.mark.parametrize("overrides, words", SETTINGS)
def test_bad_settings_are_refused_by_name_before_anything_runs(overrides, words):
    with initialize_config_dir(str(ROOT / "configs"), version_base="1.3"):
        cfg = compose("train", overrides=["output_dir=unused", *overrides])  # (as the command line gives them)
    with pytest.raises(ConfigError) as refused:
        check_settings(cfg)
    for word in words:
        assert word in str(refused.value)


@pytest.mark.parametrize("script, overrides, words, by_hydra", CASES)
def test_bad_input_is_one_paragraph_naming_the_culprit_and_changes_no_file(
    run_case, script, overrides, words, by_hydra
):
    status, err, out = run_case(script, *overrides)

    assert status == 1, out + err
    if by_hydra:
        assert err.strip().endswith(HYDRA_ERROR_END)  # Hydra's own message, without its stack trace
    else:
        message = err.strip().splitlines()[-1]
        assert message.startswith("Error: "), err
        assert sum(line.startswith("Error: ") for line in err.splitlines()) == 1
    for word in words:
        assert word in err, err


def test_a_gpu_asked_for_where_there_is_none_is_one_sentence(run_case):
    if torch.cuda.is_available():
        pytest.skip("a GPU is there")
    status, err, out = run_case("train", "trainer.accelerator=gpu")

    assert status == 1
    # Two lines: the overrides, then the error, last, where the eye lands.
    assert out.strip().startswith("Overrides: trainer.accelerator=gpu") and len(out.strip().splitlines()) == 1
    assert err.strip().splitlines() == [err.strip()] and err.startswith("Error: trainer.accelerator=gpu asks for a")
    assert "trainer=cpu" in err


# (Each payload as the whole file is refused before anything reads it: the open.ckpt cases above.)
CRAFTED = ["a pickle that runs code"] + [
    f"{target} as {place}" for target in hostile_payloads(Path()) for place in ("data", "model")
]


@pytest.mark.parametrize("script", ["train", "eval", "predict"])
@pytest.mark.parametrize("crafted", CRAFTED)
def test_a_crafted_checkpoint_as_the_newest_under_logs_runs_nothing_and_changes_no_file(
    workspace, run_case, script, crafted
):
    # The newest last.ckpt under logs/ is what ckpt_path=last (the default of eval and predict) takes.
    path = workspace / "logs" / "train" / "crafted" / "checkpoints" / "last.ckpt"
    path.parent.mkdir(parents=True)
    real = torch.load(workspace / CHECKPOINT, weights_only=True)
    if crafted == "a pickle that runs code":
        torch.save(RunsCode(workspace / "code_ran"), path)
    else:
        target, _, place = crafted.partition(" as ")
        payload = hostile_payloads(workspace)[target]
        content = {
            "data": {**real, "datamodule_hyper_parameters": payload},
            "model": {**real, "hyper_parameters": {**real["hyper_parameters"], **payload}},
        }[place]
        torch.save(content, path)
    resume = ["ckpt_path=last", "trainer.max_epochs=3", "~callbacks.plots", "~logger"]  # (no pictures: faster)
    overrides = {"train": resume, "eval": [], "predict": ["input=new.csv"]}

    status, err, out = run_case(script, *overrides[script])  # (asserts that no file outside the job changed)
    # Refused with a sentence, or the crafted keys were ignored and the job ran on what it could trust.
    assert status in (0, 1), out + err
    if status == 1:
        assert err.strip().splitlines()[-1].startswith("Error: ")
    assert not (workspace / "code_ran").exists()


@pytest.mark.parametrize("script, needs", [("train", []), ("eval", []), ("predict", ["input=new.csv"]), ("export", [])])
@pytest.mark.parametrize(
    "run_dir, words",
    [(RUN, "holds files already (.hydra, checkpoints"), (".", "holds files already"), ("claimed", "another run's")],
)
def test_a_run_never_writes_into_a_directory_it_did_not_create(workspace, capsys, script, needs, run_dir, words):
    before = fingerprint(workspace, workspace / "no job directory")

    status = run_script(script, f"hydra.run.dir={run_dir}", *needs)
    err = capsys.readouterr().err
    assert status == 1 and err.strip().startswith(f"Error: hydra.run.dir={run_dir} ") and words in err, err
    assert fingerprint(workspace, workspace / "no job directory") == before


def test_a_run_resumed_in_its_own_directory_goes_on_there(workspace, capsys):
    resume = [*SGD_STEPS, "trainer.max_epochs=3", "~logger", "~callbacks.plots", f"ckpt_path={RUN}"]

    assert run_script("train", f"hydra.run.dir={RUN}", *resume) == 0, capsys.readouterr().err
    assert json.loads((workspace / RUN / "status.json").read_text())["epochs"] == 3


def test_a_run_is_not_resumed_in_a_directory_with_symbolic_links(workspace, capsys):
    log = workspace / RUN / "train.log"
    log.unlink()
    log.symlink_to(workspace / "notes.txt")  # (the log would append to the user's notes)
    before = fingerprint(workspace, workspace / "no job directory")

    status = run_script("train", f"hydra.run.dir={RUN}", f"ckpt_path={RUN}")
    err = capsys.readouterr().err
    assert status == 1 and "holds symbolic links (train.log); a run writes no file through a link" in err, err
    assert fingerprint(workspace, workspace / "no job directory") == before


def test_a_run_directory_that_cannot_be_made_is_named_by_its_setting(workspace, capsys, monkeypatch):
    make_directory = Path.mkdir

    def read_only(path, *args, **kwargs):  # (as a folder without write permission answers a user who is not root)
        if "read-only" in str(path):
            raise PermissionError(13, "Permission denied", str(path))
        return make_directory(path, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", read_only)
    status = run_script("train", "hydra.run.dir=read-only/run")
    err = capsys.readouterr().err
    assert status == 1 and err.strip() == (
        "Error: hydra.run.dir=read-only/run cannot be written: Permission denied; choose another hydra.run.dir=."
    ), err
