"""What the benchmarks share: a throw-away state directory with its own MLflow server."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from registry.server import MlflowServerProcess
from tests.conftest import free_port


def start_mlflow(prefix: str) -> tuple[Path, MlflowServerProcess]:
    """A fresh state directory and a started MLflow server (SQLite, local artifacts) on a free port."""
    os.environ["BENTOML_DO_NOT_TRACK"] = "true"
    state = Path(tempfile.mkdtemp(prefix=prefix))
    mlflow = MlflowServerProcess(
        host="127.0.0.1", port=free_port(), backend_uri=f"sqlite:///{state / 'mlflow.db'}",
        artifacts_dir=state / "mlartifacts", state_dir=state,
    )  # fmt: skip
    mlflow.start()
    return state, mlflow
