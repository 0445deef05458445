"""scripts/export.py: the model outside this package, predicting what predict.py writes."""

import ast
import json
import sys

import numpy as np
import onnx
import onnxruntime
import pandas as pd
import pytest
import torch
from conftest import ROOT, job_config
from test_real_tables import MESSY, houses

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


def test_the_serving_example_encodes_raw_rows_as_predict_py_does(train_with, tmp_path, monkeypatch, capsys):
    """docs/checkpoints.md's serving example, run as written, on a table with text, dates, true/false and blanks."""
    frame = houses(60)
    frame.to_csv(tmp_path / "houses.csv", index=False)
    train_with(*MESSY, f"data.path={tmp_path / 'houses.csv'}", "trainer.max_epochs=5", "~logger", "~callbacks.plots")
    odd = pd.DataFrame(  # a blank in each column, a level training never saw, a date with a time zone
        {"id": [1, 2, 3], "city": ["Paris", "", "Tokyo"], "sale date": ["2024-05-01", "", "2021-01-01T23:00:00-02:00"]}
    ).assign(garden=["yes", "no", ""], **{"area m²": ["80", "", "55.5"]}, **{"price (€)": ["", "", ""]})
    pd.concat([frame.astype(str).replace("nan", ""), odd]).to_csv(tmp_path / "new.csv", index=False)
    expected = pd.read_csv(predict(job_config("predict", tmp_path, f"input={tmp_path / 'new.csv'}")))
    files = export(job_config("export", tmp_path, "ckpt_path=last", "formats=[onnx]"))

    guide = (ROOT / "docs" / "checkpoints.md").read_text()
    example = guide.split("Serving it, for example")[1].split("```python\n")[1].split("```")[0]
    module_path = list(sys.path)
    monkeypatch.chdir(tmp_path)
    try:
        exec(example.replace("logs/export/<run>", str(files["onnx"].parent)), {})
    finally:
        sys.path[:] = module_path
        sys.modules.pop("serving", None)
    served = np.array(ast.literal_eval(capsys.readouterr().out.strip().splitlines()[-1]), dtype=np.float64)[:, 0]
    np.testing.assert_allclose(served, expected["price (€)_predicted"].to_numpy(), rtol=1e-5, equal_nan=True)

    tree = ast.parse(files["encoder"].read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert {name.split(".")[0] for name in imported} <= {"math", "collections", "datetime", "typing", "numpy"}
