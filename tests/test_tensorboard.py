"""What a person sees in TensorBoard: scalars, pictures and the HParams tab, read back from the files and a server."""

import json
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from conftest import GRADIENT_STEPS, events_of
from tensorboard.plugins.hparams import plugin_data_pb2


def test_scalars_hold_epoch_curves_and_step_values_every_log_every_n_steps(train_with, tmp_path):
    train_with(
        *GRADIENT_STEPS,
        "trainer.max_epochs=30",
        "trainer.log_every_n_steps=5",
        "data.val_fraction=0.2",
        "scheduler=step",
    )

    events = events_of(tmp_path)
    every_epoch = ("train/loss", "val/loss", "val/mse", "val/mae", "val/r2", "train/lr")
    fit_path = ("train/gap_to_ols", "val/gap_to_ols", "model/t_u", "model/bias")  # every 5 steps and epoch ends
    assert set(every_epoch + fit_path + ("train/loss_step",)) <= set(events.Tags()["scalars"])
    for name in every_epoch + fit_path:  # one-step epochs: a point an epoch
        assert [e.step for e in events.Scalars(name)] == list(range(30)), name
    # Lightning writes step values at steps 5, 10, ... (counted from 0: 4, 9, ...)
    assert [e.step for e in events.Scalars("train/loss_step")] == [4, 9, 14, 19, 24, 29]
    assert events.Scalars("model/t_u")[-1].value == pytest.approx(0.5368, abs=0.01)


def test_one_feature_gets_a_fit_picture_and_several_get_predicted_vs_actual(train_with, tmp_path):
    train_with("trainer.max_epochs=5")
    assert {"plots/fit", "plots/loss"} <= set(events_of(tmp_path).Tags()["images"])
    assert (tmp_path / "plots" / "fit.png").read_bytes().startswith(b"\x89PNG")

    crops_dir = tmp_path / "crops"
    train_with("data=crops", "trainer.max_epochs=5", f"output_dir={crops_dir}")
    assert {"plots/predicted_vs_actual", "plots/loss"} <= set(events_of(crops_dir).Tags()["images"])
    assert (crops_dir / "plots" / "predicted_vs_actual.png").is_file()


def test_hparams_tab_holds_the_settings_and_final_metrics(train_with, tmp_path):
    train_with(
        "optimizer=adam", "optimizer.lr=0.05", "data.batch_size=4", "trainer.max_epochs=5", "data.val_fraction=0.2"
    )

    content = events_of(tmp_path).PluginTagToContent("hparams")
    session = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"]).session_start_info
    hparams = {name: value.ListFields()[0][1] for name, value in session.hparams.items()}
    assert hparams["optimizer"] == "Adam" and hparams["lr"] == pytest.approx(0.05) and hparams["batch_size"] == 4
    assert {"data", "normalize", "loss", "max_epochs", "seed", "scheduler"} <= set(hparams)
    experiment = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"]).experiment
    finals = {"final/val_loss", "final/val_r2", "final/train_loss", "final/train_gap_to_ols", "final/converged"}
    assert finals <= {m.name.tag for m in experiment.metric_infos}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def get_json(url: str | urllib.request.Request):
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


@pytest.mark.slow
def test_a_tensorboard_server_shows_the_runs_scalars(train_with, tmp_path):
    run = train_with(*GRADIENT_STEPS, "trainer.max_epochs=12", "trainer.log_every_n_steps=1", "scheduler=cosine")
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
        while time.monotonic() < deadline and "train/loss" not in tags.get(".", {}):
            time.sleep(0.5)
            try:
                tags = get_json(f"{base}/data/plugin/scalars/tags")
            except OSError:
                continue  # not listening yet
        assert {"train/loss", "train/lr", "baseline/ols_loss"} <= set(tags["."])
        points = get_json(f"{base}/data/plugin/scalars/scalars?run=.&tag=train/loss")
        assert len(points) == 12
        assert points[-1][2] == pytest.approx(run.metrics["train/loss"], rel=1e-6)

        statuses = ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"]
        query = {"experimentName": "", "allowedStatuses": statuses, "colParams": [], "startIndex": 0, "sliceSize": 10}
        request = urllib.request.Request(
            f"{base}/data/plugin/hparams/session_groups",
            data=json.dumps(query).encode(),
            headers={"Content-Type": "application/json"},
        )
        (group,) = get_json(request)["sessionGroups"]
        assert group["hparams"]["optimizer"] == "SGD"
        final = {value["name"]["tag"]: value["value"] for value in group["metricValues"]}
        assert final["final/train_loss"] == pytest.approx(run.metrics["train/loss"], rel=1e-6)
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_the_least_squares_statistics_are_in_the_text_tab(train_with, tmp_path):
    train_with("data=crops")

    events = events_of(tmp_path)
    (tag,) = [tag for tag in events.Tags()["tensors"] if tag.startswith("statistics")]
    table = events.Tensors(tag)[-1].tensor_proto.string_val[0].decode()
    assert "std_error" in table and "humidity" in table and "Durbin–Watson" in table
