"""Serving processes for the integration tests: a package registered as a new model and served."""

from __future__ import annotations

import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

from lifecycle.local_version import ModelPackage
from lifecycle.settings import RegistrySettings, Settings
from registry.mlflow import MlflowModelRegistry
from registry.server import MlflowServerProcess
from serving.bentoml_process import ServingProcess
from serving.settings import ServingSettings
from tests.conftest import free_port


def serve_champion(
    mlflow_server: MlflowServerProcess, package: ModelPackage, tmp_path: Path, prefix: str, **serving: Any
) -> tuple[MlflowModelRegistry, str, Settings, ServingProcess]:
    """``package`` registered as a new model (v1 @champion) and a serving process started for it."""
    registry = MlflowModelRegistry(mlflow_server.url, experiment="serving-process-tests")
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    registry.register(replace(package, name=name))
    registry.set_alias(name, "champion", "1", actor="test")
    settings = Settings(
        state_dir=tmp_path / "state", registry=RegistrySettings(tracking_uri=mlflow_server.url)
    )
    process = ServingProcess(settings, ServingSettings(**{"model": name, "port": free_port(), **serving}))
    process.start()
    return registry, name, settings, process


def wait_ready(process: ServingProcess, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not process.ready() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert process.ready(), "serving never became ready"
