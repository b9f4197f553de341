"""Models that the user's own training code already logged to MLflow (onnx, pytorch and sklearn
flavors) enter through ``lifecycle register NAME --from models:/SOURCE/VERSION``: the signature
becomes the contract, the converted ONNX is a new version with lineage to its source."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import mlflow
import mlflow.onnx
import mlflow.pytorch
import mlflow.sklearn
import numpy as np
import onnx
import pandas as pd
import pytest
import torch
from mlflow.models import ModelSignature, infer_signature
from mlflow.types import Schema, TensorSpec
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from typer.testing import CliRunner

from cli.app import app
from intake.zoo import ppocr_cls_path, word_crops
from lifecycle.contract import ModelContract
from lifecycle.nets import TabularMLP
from registry.mlflow import MlflowModelRegistry
from tests.integration.conftest import run_cli

runner = CliRunner()


@pytest.fixture(autouse=True)
def fluent_mlflow(env: str) -> None:
    """The user's own logging code talks to the same server through MLflow's fluent API."""
    mlflow.set_tracking_uri(env)
    mlflow.set_registry_uri(env)


def _register(name: str, source: str, data: Path, *extra: str) -> str:
    code, out = run_cli("register", name, "--from", source, "--data", str(data), *extra)
    assert code == 0, out
    return out


def test_a_logged_sklearn_pipeline_keeps_its_column_names(
    env: str, tmp_path: Path, stored_contract: Callable[[str], ModelContract]
) -> None:
    bunch = load_breast_cancer(as_frame=True)
    frame = bunch.data.rename(columns=lambda c: c.replace(" ", "_"))
    model = LogisticRegression(max_iter=5000).fit(frame, bunch.target)
    source = f"user-sk-{uuid.uuid4().hex[:6]}"
    with mlflow.start_run():
        mlflow.sklearn.log_model(
            model,
            name="model",
            registered_model_name=source,
            signature=infer_signature(frame, model.predict(frame)),
        )
    np.savez(tmp_path / "bc.npz", X=frame.to_numpy(), y=bunch.target.to_numpy())
    name = f"from-sk-{uuid.uuid4().hex[:6]}"
    out = _register(name, f"models:/{source}/1", tmp_path / "bc.npz")
    assert f"registered {name} v1: test accuracy" in out
    contract = stored_contract(name)
    assert contract.feature_names[:2] == ("mean_radius", "mean_texture")
    tags = MlflowModelRegistry(env).get_version(name, "1").tags
    assert tags["lifecycle.source_model_uri"] == f"models:/{source}/1"
    assert (tags["lifecycle.parent_model"], tags["lifecycle.parent_version"]) == (source, "1")
    assert tags["lifecycle.recipe"] == "mlflow-sklearn"


def test_a_logged_onnx_model_takes_its_signature_shapes(
    env: str, tmp_path: Path, stored_contract: Callable[[str], ModelContract]
) -> None:
    source = f"user-onnx-{uuid.uuid4().hex[:6]}"
    signature = ModelSignature(
        inputs=Schema([TensorSpec(np.dtype("float32"), (-1, 3, 48, 192), "x")]),
        outputs=Schema([TensorSpec(np.dtype("float32"), (-1, 2), "save_infer_model/scale_0.tmp_1")]),
    )
    with mlflow.start_run():
        mlflow.onnx.log_model(
            onnx.load(str(ppocr_cls_path())), name="model", registered_model_name=source, signature=signature
        )
    x, y = word_crops(60, seed=2)
    np.savez(tmp_path / "crops.npz", x=x, y=y)
    name = f"from-onnx-{uuid.uuid4().hex[:6]}"
    out = _register(name, f"models:/{source}/1", tmp_path / "crops.npz")
    assert "x float32 (batch, 3, 48, 192)" in out
    assert stored_contract(name).inputs[0].shape == ("batch", 3, 48, 192)


def test_a_logged_pytorch_module_is_exported(env: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    module = TabularMLP(4, 3, hidden=(8,)).eval()
    source = f"user-torch-{uuid.uuid4().hex[:6]}"
    signature = ModelSignature(
        inputs=Schema([TensorSpec(np.dtype("float32"), (-1, 4))]),
        outputs=Schema([TensorSpec(np.dtype("float32"), (-1, 3))]),
    )
    with mlflow.start_run():
        mlflow.pytorch.log_model(
            module, name="model", registered_model_name=source, signature=signature,
            input_example=np.zeros((2, 4), np.float32),  # MLflow's default pt2 format traces the module
        )  # fmt: skip
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "rows.npz", x=rng.normal(size=(50, 4)).astype(np.float32))
    name = f"from-torch-{uuid.uuid4().hex[:6]}"
    out = _register(name, f"models:/{source}/1", tmp_path / "rows.npz", "--output-names", "logits")
    assert "test agreement 1.0000" in out and "export max abs difference" in out
    assert MlflowModelRegistry(env).get_version(name, "1").tags["lifecycle.recipe"] == "mlflow-pytorch"


def test_a_flavor_that_cannot_be_converted_is_named(env: str, tmp_path: Path) -> None:
    class Echo(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
        def predict(self, context: object, model_input: pd.DataFrame) -> pd.DataFrame:
            return model_input

    source = f"user-pyfunc-{uuid.uuid4().hex[:6]}"
    with mlflow.start_run():
        mlflow.pyfunc.log_model(name="model", python_model=Echo(), registered_model_name=source)
    np.savez(tmp_path / "rows.npz", x=np.zeros((10, 2), np.float32))
    result = runner.invoke(
        app, ["register", "x", "--from", f"models:/{source}/1", "--data", str(tmp_path / "rows.npz")]
    )
    out = " ".join(result.output.split())
    assert result.exit_code == 1 and "registration converts onnx, pytorch, sklearn" in out
    missing = runner.invoke(
        app, ["register", "x", "--from", "models:/no-such-model/1", "--data", str(tmp_path / "rows.npz")]
    )
    assert missing.exit_code == 1 and "models:/no-such-model/1 is not in the registry" in " ".join(
        missing.output.split()
    )
