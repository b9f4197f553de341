"""Fixtures of the integration tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.app import app
from lifecycle.contract import ModelContract
from lifecycle.local_version import CONTRACT_FILE
from registry.mlflow import MlflowModelRegistry
from registry.server import MlflowServerProcess


@pytest.fixture
def env(mlflow_server: MlflowServerProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The CLI's environment: a fresh state folder and the MLflow server all tests share; its URL."""
    monkeypatch.setenv("LIFECYCLE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("LIFECYCLE_REGISTRY_TRACKING_URI", mlflow_server.url)
    monkeypatch.setenv("COLUMNS", "200")
    return mlflow_server.url


@pytest.fixture
def stored_contract(env: str, tmp_path: Path) -> Callable[[str, str], ModelContract]:
    """The contract a registered version carries, read back from the MLflow server."""

    def read(name: str, version: str = "1") -> ModelContract:
        local = MlflowModelRegistry(env).download(name, version, tmp_path / f"{name}-{version}")
        return ModelContract.from_json((local.files_dir / CONTRACT_FILE).read_text())

    return read


def run_cli(*args: str) -> tuple[int, str]:
    """Run ``lifecycle ARGS``; its exit code and its output on one line (wrapping undone)."""
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, " ".join(result.output.split())
