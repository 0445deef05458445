"""What a person sees in TensorBoard: scalars, pictures and the HParams tab, read back from the files and a server."""

import json
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from conftest import GRADIENT_STEPS, events_of
from PIL import Image
from tensorboard.plugins.hparams import api_pb2, plugin_data_pb2

from linreg.callbacks.plots import fit_figure, loss_label


def test_scalars_hold_a_point_an_epoch_and_no_duplicate_or_constant_cards(train_with, tmp_path):
    train_with(
        *GRADIENT_STEPS,
        "trainer.max_epochs=30",
        "trainer.log_every_n_steps=5",
        "data.val_fraction=0.2",
        "scheduler=step",
    )

    events = events_of(tmp_path)
    every_epoch = (
        "train/loss",
        "val/loss",
        "val/mae",
        "val/r2",
        "train/lr",
        "train/coefficient_gap",
        "train/converged",
    )
    fit_path = ("train/gap_to_ols", "val/gap_to_ols", "weights/t_u", "weights/bias")  # every 5 steps and epoch ends
    # No val/mse (the loss is that MSE), no train/loss_step (one-step epochs: the epoch curve is as fine), no
    # Lightning epoch staircase, no one-point constants: the groups are train, val and weights, in that order.
    assert set(events.Tags()["scalars"]) == set(every_epoch + fit_path)
    for name in every_epoch + fit_path:
        assert [e.step for e in events.Scalars(name)] == list(range(30)), name
    assert events.Scalars("weights/t_u")[-1].value == pytest.approx(0.5368, abs=0.01)


# 800 training rows in batches of 40: 20 batches an epoch, two epochs, the step values written every 5 steps.
LONG_EPOCHS = [
    "data=synthetic",
    "data.n_samples=1000",
    "data.batch_size=40",
    "trainer.max_epochs=2",
    "trainer.log_every_n_steps=5",
    "optimizer=sgd",
]


def test_long_epochs_also_get_the_loss_every_log_every_n_steps(train_with, tmp_path):
    train_with(*LONG_EPOCHS)

    # 20 steps an epoch, logged every 5 (counted from 0: 4, 9, ...), and the epoch losses.
    events = events_of(tmp_path)
    assert [e.step for e in events.Scalars("train/loss_step")] == [4, 9, 14, 19, 24, 29, 34, 39]
    assert [e.step for e in events.Scalars("train/loss")] == [19, 39]
    assert [e.step for e in events.Scalars("train/gap_to_ols")] == [4, 9, 14, 19, 24, 29, 34, 39]  # (the fit path's)


def test_the_fit_path_writes_each_logged_optimizer_step_once_where_batches_accumulate(train_with, tmp_path):
    train_with(*LONG_EPOCHS, "trainer.accumulate_grad_batches=2")

    # 20 batches, 10 optimizer steps an epoch: at the steps Lightning writes its own step values, once each (the
    # batch after a step, which only accumulates, is at the same optimizer step).
    events = events_of(tmp_path)
    lightning_steps = [e.step for e in events.Scalars("train/loss_step")]
    assert lightning_steps == [4, 9, 14, 19]
    assert [e.step for e in events.Scalars("train/gap_to_ols")] == lightning_steps
    assert [e.step for e in events.Scalars("weights/x0")] == lightning_steps


def test_one_feature_gets_a_fit_picture_and_several_get_predicted_vs_actual(train_with, tmp_path):
    run = train_with("trainer.max_epochs=5", "data.normalize=none")
    assert {"plots/fit", "plots/loss"} <= set(events_of(tmp_path).Tags()["images"])
    assert (tmp_path / "plots" / "fit.png").read_bytes().startswith(b"\x89PNG")
    assert Image.open(tmp_path / "plots" / "fit.png").size == (480, 360)  # TensorBoard's card shows it whole
    (axes,) = fit_figure(run.model, run.datamodule, run.least_squares).axes
    assert [line.get_label() for line in axes.get_lines()] == ["least squares", "trained"]
    assert (axes.get_xlabel(), axes.get_ylabel()) == ("t_u", "t_c")
    assert loss_label(run.model) == "MSE (target units)"

    crops_dir = tmp_path / "crops"
    train_with("data=crops", "trainer.max_epochs=5", f"output_dir={crops_dir}")
    assert {"plots/predicted_vs_actual", "plots/loss"} <= set(events_of(crops_dir).Tags()["images"])
    assert (crops_dir / "plots" / "predicted_vs_actual.png").is_file()


def test_hparams_tab_holds_the_settings_and_how_the_run_ended(train_with, tmp_path):
    train_with(
        "optimizer=adam", "optimizer.lr=0.05", "data.batch_size=4", "trainer.max_epochs=5", "data.val_fraction=0.2"
    )

    content = events_of(tmp_path).PluginTagToContent("hparams")
    assert "_hparams_/experiment" not in content  # TensorBoard derives the columns from all the runs it serves
    session = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"]).session_start_info
    hparams = {name: value.ListFields()[0][1] for name, value in session.hparams.items()}
    assert hparams["optimizer"] == "Adam" and hparams["lr"] == pytest.approx(0.05) and hparams["batch_size"] == 4
    assert {"data", "normalize", "loss", "max_epochs", "seed", "scheduler"} <= set(hparams)
    end = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_end_info"]).session_end_info
    assert end.status == api_pb2.STATUS_SUCCESS


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def get_json(url: str | urllib.request.Request):
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


def post_json(url: str, query: dict):
    request = urllib.request.Request(url, data=json.dumps(query).encode(), headers={"Content-Type": "application/json"})
    return get_json(request)


@pytest.mark.slow
def test_a_tensorboard_server_compares_runs_in_scalars_and_hparams(train_with, tmp_path):
    run = train_with(
        *GRADIENT_STEPS, "trainer.max_epochs=12", "scheduler=cosine", f"output_dir={tmp_path / 'sgd'}"
    )  # no validation split
    adam = ["optimizer=adam", "optimizer.lr=0.05", "trainer.max_epochs=12", "data.val_fraction=0.2"]
    other = train_with(*adam, f"output_dir={tmp_path / 'adam'}")
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tensorboard.main",
            "--logdir",
            str(tmp_path),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base, deadline, tags = f"http://127.0.0.1:{port}", time.monotonic() + 60, {}
        while time.monotonic() < deadline and not {"sgd", "adam"} <= set(tags):
            time.sleep(0.5)
            try:
                tags = get_json(f"{base}/data/plugin/scalars/tags")
            except OSError:
                continue  # not listening yet
        assert {"train/loss", "train/lr", "train/gap_to_ols", "weights/t_u"} <= set(tags["sgd"])
        points = get_json(f"{base}/data/plugin/scalars/scalars?run=sgd&tag=train/loss")
        assert len(points) == 12  # an epoch, a point
        assert points[-1][2] == pytest.approx(run.metrics["train/loss"], rel=1e-6)

        # The settings that differ between the runs come first (the tab shows the first five), the other
        # run's validation metrics are columns too.
        experiment = post_json(f"{base}/data/plugin/hparams/experiment", {"experimentName": ""})
        settings = [(info["name"], info.get("differs", False)) for info in experiment["hparamInfos"]]
        assert settings[:3] == [("lr", True), ("optimizer", True), ("scheduler", True)]
        assert not any(differs for _, differs in settings[3:])
        metrics = [info["name"]["tag"] for info in experiment["metricInfos"]]
        assert {"train/loss", "train/converged", "val/loss", "val/r2"} <= set(metrics)
        assert not any(name.startswith("weights/") for name in metrics[:5])

        statuses = ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"]
        query = {"experimentName": "", "allowedStatuses": statuses, "colParams": [], "startIndex": 0, "sliceSize": 10}
        groups = post_json(f"{base}/data/plugin/hparams/session_groups", query)["sessionGroups"]
        results = {
            group["hparams"]["optimizer"]: {value["name"]["tag"]: value["value"] for value in group["metricValues"]}
            for group in groups
        }
        assert results["SGD"]["train/loss"] == pytest.approx(run.metrics["train/loss"], rel=1e-6)
        assert results["Adam"]["val/r2"] == pytest.approx(other.metrics["val/r2"], rel=1e-6)
        assert results["Adam"]["train/converged"] == other.metrics["train/converged"]
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_the_least_squares_statistics_are_in_the_text_tab(train_with, tmp_path):
    train_with("data=crops")

    events = events_of(tmp_path)
    (tag,) = [tag for tag in events.Tags()["tensors"] if tag.startswith("statistics")]
    table = events.Tensors(tag)[-1].tensor_proto.string_val[0].decode()
    assert "std_error" in table and "humidity" in table and "Durbin–Watson" in table
