"""A real ``bentoml serve`` process: hot swap under load with no failed request, and a lossless log."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from lifecycle.data import DataSplits
from lifecycle.db import create_db_engine, session_factory
from lifecycle.db.schema import PredictionRow
from lifecycle.local_version import ModelPackage
from lifecycle.settings import RegistrySettings, Settings
from registry.mlflow import MlflowModelRegistry
from registry.server import MlflowServerProcess
from serving.bentoml_process import ServingProcess
from serving.settings import ServingSettings
from tests.conftest import free_port


@pytest.mark.slow
def test_alias_move_under_load_is_served_within_5s_without_errors_and_every_answer_is_logged(
    mlflow_server: MlflowServerProcess,
    tabular_package: ModelPackage,
    tabular_data: DataSplits,
    tmp_path: Path,
) -> None:
    registry = MlflowModelRegistry(mlflow_server.url, experiment="serving-process-tests")
    name = f"live-{uuid.uuid4().hex[:6]}"
    registry.register(replace(tabular_package, name=name))
    registry.set_alias(name, "champion", "1", actor="test")
    settings = Settings(
        state_dir=tmp_path / "state", registry=RegistrySettings(tracking_uri=mlflow_server.url)
    )
    serving = ServingProcess(settings, ServingSettings(model=name, port=free_port(), poll_interval_s=1.0))
    serving.start()
    try:
        deadline = time.monotonic() + 60
        while not serving.ready() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert serving.ready(), "serving never became ready"

        results: list[tuple[float, int, str | None]] = []
        lock, stop = threading.Lock(), threading.Event()
        body = {"instances": tabular_data.x_test[:1].tolist()}

        def client() -> None:
            with httpx.Client(base_url=serving.url, timeout=10) as http:
                while not stop.is_set():
                    response = http.post("/v1/predict", json=body)
                    version = response.json().get("version") if response.status_code == 200 else None
                    with lock:
                        results.append((time.monotonic(), response.status_code, version))
                    time.sleep(0.005)  # bounded load: 4 clients, ~5 ms think time

        threads = [threading.Thread(target=client) for _ in range(4)]
        for t in threads:
            t.start()
        time.sleep(2)
        new = registry.register(replace(tabular_package, name=name))
        registry.set_alias(name, "champion", new.version, actor="test")
        moved = time.monotonic()
        time.sleep(7)
        stop.set()
        for t in threads:
            t.join()
        metrics = httpx.get(f"{serving.url}/metrics", timeout=10).text
        gc_status = httpx.get(f"{serving.url}/admin/status", timeout=10).json()["gc"]
    finally:
        serving.stop()  # SIGTERM: the service flushes its prediction log on shutdown

    statuses = Counter(status for _, status, _ in results)
    assert set(statuses) == {200}, statuses
    first_new = min(at for at, _, version in results if version == new.version)
    assert first_new - moved < 5.0
    assert all(version == new.version for at, _, version in results if at > first_new + 0.5)

    engine = create_db_engine(settings.database_url)
    with session_factory(engine)() as session:
        logged = session.scalar(
            select(func.count()).select_from(PredictionRow).where(PredictionRow.model_name == name)
        )
    engine.dispose()
    assert logged == len(results), f"{len(results)} answered, {logged} logged"
    for series in ("lifecycle_requests_total", "lifecycle_predicted_rows_total", "lifecycle_prediction_confidence_bucket",
                   "lifecycle_model_latency_seconds_bucket", "bentoml_service_request_total"):  # fmt: skip
        assert series in metrics, series
    assert f'version="{new.version}"' in metrics
    # the worker froze its start-up heap (imports, first model) and swapped models on top of it
    assert gc_status["frozen_objects"] > 50_000, gc_status
    assert gc_status["thresholds"][0] == ServingSettings().gc_gen0_threshold, gc_status
