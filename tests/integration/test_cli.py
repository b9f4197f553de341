"""The CLI against a real MLflow server and a real SQLite database."""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from cli.app import app
from lifecycle.child_process import port_open
from lifecycle.data import DataSplits
from lifecycle.local_version import ModelPackage
from registry.mlflow import MlflowModelRegistry
from tests.conftest import free_port

runner = CliRunner()


def test_train_list_promote_and_history(env: str) -> None:
    name = f"cli-{uuid.uuid4().hex[:6]}"
    result = runner.invoke(app, ["train", "breast-cancer-mlp", "--as", name, "--alias", "champion"])
    assert result.exit_code == 0, result.output
    assert f"registered {name} v1: test accuracy 0." in result.output
    assert runner.invoke(app, ["train", "breast-cancer-mlp", "--as", name, "--seed", "1"]).exit_code == 0

    listing = runner.invoke(app, ["models", name])
    assert listing.exit_code == 0, listing.output
    assert "champion" in listing.output and "train" in listing.output and "fp32" in listing.output

    promoted = runner.invoke(app, ["promote", name, "2"])
    assert promoted.exit_code == 0, promoted.output
    assert f"{name}@champion → v2 (was v1)" in promoted.output
    assert MlflowModelRegistry(env).aliases(name) == {"champion": "2"}

    hist = runner.invoke(app, ["history", name])
    assert hist.exit_code == 0
    assert hist.output.count("champion") == 2 and "current" in hist.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["promote", "no-such-model", "1"], "'no-such-model' does not exist"),
        (["train", "no-such-example"], "no built-in example 'no-such-example'"),
        (["models", "no-such-model"], "'no-such-model' does not exist"),
        (["promote", "x", "one"], "versions are positive integers"),
    ],
)
def test_errors_are_one_clear_line_and_exit_1(env: str, args: list[str], message: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert message in " ".join(result.output.split())
    assert "Traceback" not in result.output


def test_unreachable_registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIFECYCLE_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("LIFECYCLE_REGISTRY_TRACKING_URI", f"http://127.0.0.1:{free_port()}")
    result = runner.invoke(app, ["models"])
    assert result.exit_code == 1
    assert "not reachable" in result.output and "lifecycle up" in " ".join(result.output.split())


def test_without_a_configured_registry_a_one_off_command_starts_the_embedded_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    monkeypatch.setenv("LIFECYCLE_STATE_DIR", str(tmp_path))
    monkeypatch.delenv("LIFECYCLE_REGISTRY_TRACKING_URI", raising=False)
    monkeypatch.setenv("LIFECYCLE_REGISTRY_PORT", str(port))
    result = runner.invoke(app, ["train", "breast-cancer-mlp", "--as", "first", "--alias", "champion"])
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert f"started the embedded one at http://127.0.0.1:{port}" in out and "registered first v1" in out
    assert not port_open("127.0.0.1", port)  # stopped with the command
    assert (tmp_path / "mlflow.db").exists()  # the same store `lifecycle up` uses
    listing = runner.invoke(app, ["models", "first"])
    assert listing.exit_code == 0 and "champion" in listing.output


def test_register_a_users_onnx_file_then_optimize_it(
    env: str, tmp_path: Path, tabular_package: ModelPackage, tabular_data: DataSplits
) -> None:
    onnx_file = tmp_path / "user.onnx"
    onnx_file.write_bytes(tabular_package.onnx_model)
    d = tabular_data
    data_file = tmp_path / "data.npz"
    np.savez(
        data_file,
        x=np.concatenate([d.x_train, d.x_val, d.x_test]),
        y=np.concatenate([d.y_train, d.y_val, d.y_test]),
    )
    name = f"user-{uuid.uuid4().hex[:6]}"
    result = runner.invoke(app, ["register", name, "--onnx", str(onnx_file), "--data", str(data_file)])
    assert result.exit_code == 0, result.output
    assert f"registered {name} v1" in result.output

    result = runner.invoke(
        app, ["optimize", name, "-v", "1", "--recipes", "onnx-fp32,distill", "--rounds", "20"]
    )
    assert result.exit_code == 0, result.output
    assert "variants registered" in result.output and "distill" in result.output
    tags = MlflowModelRegistry(env).get_version(name, "1").tags
    assert tags["lifecycle.recipe"] == "import" and tags["lifecycle.source_file"] == "user.onnx"


def test_optimize_and_register_errors(env: str, tmp_path: Path) -> None:
    result = runner.invoke(app, ["optimize", "whatever", "-v", "1", "--recipes", "int4"])
    assert result.exit_code == 1 and "unknown recipe 'int4'" in result.output
    bad = tmp_path / "bad.npz"
    np.savez(bad, features=np.zeros((3, 2)))
    onnx_file = tmp_path / "m.onnx"
    onnx_file.write_bytes(b"not onnx")
    result = runner.invoke(app, ["register", "m", "--onnx", str(onnx_file), "--data", str(bad)])
    assert result.exit_code == 1 and "m.onnx is not a valid ONNX model" in " ".join(result.output.split())


def test_retrain_now_then_history(env: str) -> None:
    name = f"cli-{uuid.uuid4().hex[:6]}"
    assert (
        runner.invoke(app, ["train", "breast-cancer-mlp", "--as", name, "--alias", "champion"]).exit_code == 0
    )
    result = runner.invoke(app, ["retrain", "now", name])
    assert result.exit_code == 0, result.output
    challenger = MlflowModelRegistry(env).aliases(name)["challenger"]
    assert f"{name} v{challenger} is the challenger" in " ".join(result.output.split())
    history = runner.invoke(app, ["retrain", "history", name])
    assert history.exit_code == 0 and "succeeded" in history.output and "manual" in history.output
    missing = runner.invoke(app, ["retrain", "now", "no-such-model"])
    assert missing.exit_code == 1 and "no-such-model" in missing.output
