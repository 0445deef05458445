"""scripts/export.py: the model outside this package, predicting what predict.py writes."""

import json

import numpy as np
import onnx
import onnxruntime
import pandas as pd
import pytest
import torch
from conftest import job_config

from linreg.export import export
from linreg.predict import predict


@pytest.mark.parametrize(
    "data, model", [("thermometer", "linear"), ("anscombe", "linear"), ("crops", "linear"), ("crops", "mlp")]
)
def test_onnxruntime_and_the_torch_program_predict_what_predict_py_writes(train_with, tmp_path, data, model):
    train_with(f"data={data}", f"model={model}", "trainer.max_epochs=5", "~logger", "~callbacks.plots")
    table = f"pkg://linreg/datasets/{data}.csv"
    written = pd.read_csv(predict(job_config("predict", tmp_path, f"input={table}", "ckpt_path=last")))

    files = export(job_config("export", tmp_path, "ckpt_path=last"))
    description = json.loads(files["description"].read_text())
    features = written[description["features"]].to_numpy(np.float32)
    expected = written[[f"{target}_predicted" for target in description["targets"]]].to_numpy(np.float32)
    session = onnxruntime.InferenceSession(files["onnx"])
    (from_onnx,) = session.run(None, {"features": features})
    np.testing.assert_allclose(from_onnx, expected, rtol=1e-5, atol=1e-5)
    (one_row,) = session.run(None, {"features": features[:1]})  # any number of rows
    np.testing.assert_allclose(one_row, expected[:1], rtol=1e-5, atol=1e-5)
    from_program = torch.export.load(files["torch"]).module()(torch.tensor(features)).detach().numpy()
    np.testing.assert_allclose(from_program, expected, rtol=1e-5, atol=1e-5)
    assert json.loads(onnx.load(files["onnx"]).metadata_props[0].value) == description["features"]
    assert description["encoded_columns"] == [] and not list(files["onnx"].parent.glob("*partial*"))
