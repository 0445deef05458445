"""cv.folds=K: K runs on K folds, their mean for Hydra, a refit to use; also in a -m grid."""

import json
import math
import statistics

import pandas as pd
import pytest
import torch
from conftest import job_config, sweep

from linreg.errors import ConfigError
from linreg.evaluate import evaluate
from linreg.runtime import build
from linreg.train import train

DATA = ["data=synthetic", "data.n_samples=500", "data.n_features=4", "data.test_fraction=0.2", "~logger"]


def test_five_folds_validate_each_training_row_once_and_never_a_test_row(make_config):
    first = build(make_config(*DATA, "cv.folds=5").data, folds=5, fold=0, _convert_="all")
    first.setup("fit")
    folds = [first] + [first.with_fold(k) for k in range(1, 5)]

    validated = torch.cat([fold.val.rows for fold in folds])
    outside_test = torch.cat([first.train.rows, first.val.rows])
    assert sorted(validated.tolist()) == sorted(outside_test.tolist())  # a partition: each row once
    assert not set(validated.tolist()) & set(first.test.rows.tolist()) and len(first.test) == 100
    for fold in folds:  # each trains on the other four folds, normalized on them
        assert len(fold.train) == 320 and len(fold.val) == 80
        assert not set(fold.train.rows.tolist()) & set(fold.val.rows.tolist())
    assert not torch.equal(folds[0].feature_normalizer.offset, folds[1].feature_normalizer.offset)
    refit = first.with_fold(None)
    assert len(refit.train) == 400 and len(refit.val) == 0 and torch.equal(refit.test.rows, first.test.rows)


def test_cross_validation_reports_each_fold_returns_the_mean_and_refits_the_checkpoint(make_config, tmp_path):
    objective = train(make_config(*DATA, "cv.folds=5", "cv.refit=true", "print_config=none"))

    status = json.loads((tmp_path / "status.json").read_text())
    losses = [fold["val/loss"] for fold in status["folds"]]
    assert len(losses) == 5 and objective == pytest.approx(statistics.fmean(losses))
    assert status["metrics"]["val/loss"] == objective and status["optimized_metric"] == "val/loss"
    assert status["metrics_sd"]["val/loss"] == pytest.approx(statistics.stdev(losses))
    assert status["converged"] is True and "test/loss" in status["refit_metrics"]
    assert sorted(p.name for p in tmp_path.glob("fold_*")) == [f"fold_{k}" for k in range(5)]
    assert (tmp_path / "fold_3" / "checkpoints" / "last.ckpt").is_file()
    # The refit is the run directory's checkpoint: eval.py scores it on the test split no fold saw.
    metrics = evaluate(job_config("eval", tmp_path, f"ckpt_path={tmp_path}", "~logger"))
    assert metrics["test/loss"] == pytest.approx(status["refit_metrics"]["test/loss"], rel=1e-5)


def test_folds_of_one_row_give_nan_where_a_metric_needs_two_and_the_means_of_the_rest(make_config, tmp_path):
    cfg = make_config("data=synthetic", "data.n_samples=4", "data.val_fraction=0", "cv.folds=3", "~logger")

    assert train(cfg) > 0
    status = json.loads((tmp_path / "status.json").read_text())
    assert status["status"] == "ok" and math.isnan(status["metrics"]["val/r2"])  # (no R² of one row)
    assert status["metrics_sd"]["val/loss"] > 0


def test_resuming_a_cross_validation_is_refused_with_what_to_do(make_config):
    with pytest.raises(ConfigError, match="resumes one run"):
        train(make_config(*DATA, "cv.folds=3", "ckpt_path=last", "print_config=none"))


@pytest.mark.slow
def test_a_grid_of_cross_validated_jobs_summarizes_mean_and_sd(tmp_path):
    _, sweep_dir = sweep(
        tmp_path,
        *DATA[:4],
        "cv.folds=3",
        "~callbacks.plots",
        "model.l2=0.001,1",
        "data.normalize=standardize,minmax",
        "~callbacks.progress_bar",
    )

    summary = pd.read_csv(sweep_dir / "summary.csv")
    assert len(summary) == 4 and (summary["folds"] == 3).all() and (summary["objective_sd"] > 0).all()
    for _, row in summary.iterrows():  # the objective is the folds' mean val/loss
        (job,) = sweep_dir.glob(f"{row['job']}_*")
        folds = json.loads((job / "status.json").read_text())["folds"]
        assert row["objective"] == pytest.approx(statistics.fmean(f["val/loss"] for f in folds), rel=1e-6)
    assert summary["overrides"].iloc[0].count("model.l2=1") == 0  # strong ridge on 4 clean features: worst
