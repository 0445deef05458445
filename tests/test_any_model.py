"""Any model: an MLP, or a net of the user's own, goes through every command; the linear-only reports say they do
not apply to it, and checkpoints rebuild only the classes this template or the user trusts."""

import json
import textwrap

import pandas as pd
import pytest
import torch
from conftest import events_of, job_config, write_parquet_directory

from linreg.errors import ConfigError
from linreg.evaluate import evaluate
from linreg.model import Regressor
from linreg.predict import predict
from linreg.train import summarize, train

# A table of 8 features with test rows, and a few epochs of Adam: seconds to train; and a small MLP on it.
STEPS = ["optimizer=adam", "optimizer.lr=0.01", "trainer.max_epochs=3", "data.batch_size=100"]
TABLE = ["data=synthetic", "data.n_samples=600", "data.test_fraction=0.2", *STEPS]
SMALL_MLP = ["model=mlp", "model.net.hidden=[8]"]
MLP = [*SMALL_MLP, *TABLE]


def test_an_mlp_trains_evaluates_and_predicts_and_no_linear_report_describes_it(train_with, tmp_path):
    run = train_with(*MLP)

    assert run.model.linear is None and type(run.model.net).__name__ == "MLP"
    assert {"train/loss", "val/loss", "val/r2", "test/loss"} <= set(run.metrics)
    assert not {"train/gap_to_ols", "train/converged"} & set(run.metrics)
    # The verdict says why it does not apply, and compares with least squares instead.
    sentence = run.verdict.sentence()
    assert run.verdict.converged is None and "model.net is MLP" in sentence and "against least squares'" in sentence
    summary = summarize(run, tmp_path)
    assert "trained:" not in summary and "least squares:" in summary
    assert all("trained" not in row for row in run.statistics.coefficients)  # coefficients.csv: least squares only
    scalars = set(events_of(tmp_path).Tags()["scalars"])
    assert "train/loss" in scalars and not any("gap_to_ols" in name or name.startswith("weights/") for name in scalars)
    assert (tmp_path / "plots" / "predicted_vs_actual.png").is_file()

    metrics = evaluate(job_config("eval", tmp_path, f"ckpt_path={tmp_path}", "~logger"))
    assert metrics == pytest.approx({name: run.metrics[name] for name in metrics}, abs=1e-6)
    rows = run.datamodule.test.features[:3]
    pd.DataFrame(rows.numpy(), columns=run.datamodule.feature_names).to_csv(tmp_path / "new.csv", index=False)
    written = pd.read_csv(predict(job_config("predict", tmp_path, f"input={tmp_path / 'new.csv'}")))
    expected = run.model(rows).detach()[:, 0]
    torch.testing.assert_close(torch.tensor(written["y0_predicted"].to_numpy(), dtype=torch.float32), expected)
    with pytest.raises(ConfigError, match="intervals are those of least squares.*MLP"):
        predict(job_config("predict", tmp_path, f"input={tmp_path / 'new.csv'}", "interval=0.95", "output=x.csv"))


def test_settings_of_a_linear_net_are_refused_for_an_mlp_with_a_sentence(train_with):
    with pytest.raises(ConfigError, match="model.l2 apply to a linear net's weights, and model.net is MLP"):
        train_with(*MLP, "+model.l2=0.1")
    with pytest.raises(ConfigError, match="optimizer.lr=auto .* model.net is linreg.nets.MLP"):
        train_with(*MLP, "optimizer=sgd", "optimizer.lr=auto")
    with pytest.raises(ConfigError, match=r"model.net \(linreg.nets.MLP\) refused its settings: activation='swish'"):
        train_with(*MLP, "model.net.activation=swish")


def test_an_mlp_cross_validates_resumes_and_trains_streamed_and_on_simulated_ddp(make_config, train_with, tmp_path):
    folds = make_config(*MLP, "cv.folds=2", "~logger", "~callbacks.plots")
    assert train(folds) > 0
    assert json.loads((tmp_path / "status.json").read_text())["status"] == "ok"

    first = train_with(*MLP, "~logger", f"output_dir={tmp_path / 'first'}")
    resumed = train_with(
        *MLP, "trainer.max_epochs=5", f"ckpt_path={tmp_path / 'first'}", f"output_dir={tmp_path / 'r'}"
    )
    assert first.trainer.current_epoch == 3 and resumed.trainer.current_epoch == 5

    parquet = write_parquet_directory(tmp_path / "table")
    streamed = train_with(
        *SMALL_MLP, *STEPS, "data=csv", f"data.path={parquet}", "data.targets=y", "data.stream=true", "~logger"
    )
    assert streamed.model.linear is None and streamed.trainer.current_epoch == 3

    # Two processes on batches of 7 (shares of 4 and 3; the epoch's last batch of 3, 2 and 1) take the steps of one.
    odd = [*MLP, "data.batch_size=7", "~logger", "~callbacks.plots"]
    single = train_with(*odd, f"output_dir={tmp_path / 'single'}")
    train_with(*odd, "trainer=ddp_sim", f"output_dir={tmp_path / 'ddp'}")
    spawned = Regressor.load_from_checkpoint(tmp_path / "ddp" / "checkpoints" / "last.ckpt")
    assert spawned.linear is None
    for name, value in single.model.net.state_dict().items():
        torch.testing.assert_close(spawned.net.state_dict()[name], value, atol=1e-5, rtol=1e-5)


def test_resuming_with_another_net_is_one_sentence(train_with, tmp_path):
    train_with(*MLP, "~logger", "~callbacks.plots", f"output_dir={tmp_path / 'mlp'}")
    with pytest.raises(ConfigError, match="The checkpoint's net is .*MLP.*resume with the model="):
        train_with(*TABLE, f"ckpt_path={tmp_path / 'mlp'}", "trainer.max_epochs=5")


@pytest.fixture
def own_net(tmp_path, monkeypatch):
    """A package of the user's own with an nn.Module net, and a YAML in a config folder of theirs naming it."""
    package = tmp_path / "mynets"
    package.mkdir()
    (package / "__init__.py").write_text(
        textwrap.dedent(
            '''
            from torch import nn

            class Wide(nn.Module):
                """One hidden layer of `width` tanh units."""

                def __init__(self, in_features, out_features, width=16):
                    super().__init__()
                    hidden = nn.Linear(in_features, width)
                    self.layers = nn.Sequential(hidden, nn.Tanh(), nn.Linear(width, out_features))

                def forward(self, features):
                    return self.layers(features)
            '''
        )
    )
    (tmp_path / "configs" / "model").mkdir(parents=True)
    (tmp_path / "configs" / "model" / "wide.yaml").write_text(
        "_target_: linreg.model.Regressor\nnet:\n  _target_: mynets.Wide\n  width: 4\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    return [f"hydra.searchpath=[file://{tmp_path / 'configs'}]", "model=wide"]


def test_a_net_of_the_users_own_trains_and_predicts_once_trusted(train_with, tmp_path, own_net):
    with pytest.raises(ConfigError, match=r"mynets.Wide is not one of this template's classes.*trusted_classes"):
        train_with(*TABLE, *own_net)

    run = train_with(*TABLE, *own_net, "trusted_classes=[mynets.Wide]")
    assert type(run.model.net).__name__ == "Wide" and run.model.linear is None
    pd.DataFrame(run.datamodule.test.features[:2].numpy(), columns=run.datamodule.feature_names).to_csv(
        tmp_path / "new.csv", index=False
    )
    new = f"input={tmp_path / 'new.csv'}"
    with pytest.raises(ConfigError, match="names mynets.Wide, which this template does not rebuild"):
        predict(job_config("predict", tmp_path, new))
    written = pd.read_csv(predict(job_config("predict", tmp_path, new, "trusted_classes=[mynets.Wide]")))
    expected = run.model(run.datamodule.test.features[:2]).detach()[:, 0]
    torch.testing.assert_close(torch.tensor(written["y0_predicted"].to_numpy(), dtype=torch.float32), expected)


@pytest.mark.parametrize(
    "where, value",
    [("net", {"_target_": "os.system", "command": "true"}), ("model_class", "subprocess.Popen")],
)
def test_a_checkpoint_naming_a_class_outside_the_allow_list_is_refused(train_with, tmp_path, where, value):
    train_with("~logger", "~callbacks.plots")
    checkpoint = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    if where == "net":
        checkpoint["hyper_parameters"]["net"] = value
    else:
        checkpoint["model_class"] = value
    torch.save(checkpoint, tmp_path / "crafted.ckpt")

    with pytest.raises(ConfigError, match=f"names {value if where == 'model_class' else 'os.system'}, which this"):
        evaluate(job_config("eval", tmp_path, f"ckpt_path={tmp_path / 'crafted.ckpt'}", "~logger"))


def test_a_quantile_loss_and_an_added_metric_come_from_config(train_with):
    run = train_with(
        "data=synthetic",
        "data.n_samples=500",
        "data.batch_size=50",
        "loss=quantile",
        "loss.quantile=0.9",
        "+metrics.mape._target_=torchmetrics.MeanAbsolutePercentageError",
        "optimizer=adam",
        "optimizer.lr=0.05",
        "trainer.max_epochs=20",
        "~logger",
        "~callbacks.plots",
    )

    assert type(run.model.loss_fn).__name__ == "QuantileLoss" and "val/mape" in run.metrics
    residuals = run.datamodule.train.targets - run.model(run.datamodule.train.features).detach()
    assert 0.8 < float((residuals < 0).float().mean()) < 0.97  # about nine rows in ten under the prediction
