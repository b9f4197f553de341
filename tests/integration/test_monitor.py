"""A drift check against a real MLflow server and a real database: window from the prediction log,
verdict stored, MLflow run with metrics (and the Evidently HTML report when drift is found), alert."""

from __future__ import annotations

import uuid
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from mlflow import MlflowClient
from sqlalchemy import Engine, insert

from lifecycle.alerts import Alerter
from lifecycle.data import DataSplits
from lifecycle.db import session_factory
from lifecycle.db.schema import PredictionRow
from lifecycle.db.types import utcnow
from lifecycle.local_version import ModelPackage
from monitoring.monitor import Monitor
from monitoring.settings import MonitorSettings
from registry.mlflow import MlflowModelRegistry
from registry.server import MlflowServerProcess

pytestmark = pytest.mark.slow


def _serve(engine: Engine, model: str, version: str, x: np.ndarray) -> None:
    """Rows as serving logs them (the monitor recomputes outputs from the logged features)."""
    now = utcnow()
    rows = [
        {
            "request_id": uuid.uuid4().hex,
            "ts": now,
            "model_name": model,
            "version": version,
            "role": "champion",
            "features": row.tolist(),
            "predicted_class": 0,
            "confidence": 0.9,
            "latency_ms": 1.0,
            "error": None,
        }
        for row in x
    ]
    with engine.begin() as conn:
        conn.execute(insert(PredictionRow), rows)


@pytest.mark.parametrize("db_url", ["sqlite", "postgresql"], indirect=True)
def test_check_stores_logs_reports_and_alerts(
    mlflow_server: MlflowServerProcess,
    tabular_package: ModelPackage,
    tabular_data: DataSplits,
    migrated_engine: Engine,
    tmp_path: Path,
) -> None:
    name = f"monitored-{uuid.uuid4().hex[:6]}"
    registry = MlflowModelRegistry(mlflow_server.url, experiment="monitor-tests")
    registry.register(replace(tabular_package, name=name))
    registry.set_alias(name, "champion", "1", actor="test")
    tracker = MlflowModelRegistry(mlflow_server.url, experiment="monitor-tests-checks")
    sessions = session_factory(migrated_engine)
    settings = MonitorSettings(min_window=50)
    monitor = Monitor(sessions, registry, tracker, Alerter(sessions), settings, tmp_path / "cache")
    assert name in monitor.models()

    empty = monitor.check(name)
    assert not empty.verdict.drift and "needs 50" in empty.verdict.summary()

    _serve(migrated_engine, name, "1", tabular_data.x_test)  # unshifted traffic
    calm = monitor.check(name)
    assert calm.verdict.n_current == len(tabular_data.x_test) and not calm.verdict.drift, (
        calm.verdict.summary()
    )
    client = MlflowClient(mlflow_server.url)
    assert calm.run_id is not None
    run = client.get_run(calm.run_id)
    assert run.data.metrics["drift"] == 0.0 and "input_p_value" in run.data.metrics
    assert client.list_artifacts(calm.run_id) == []  # no report for an unremarkable window

    shifted = tabular_data.x_test + 3.0 * tabular_data.x_train.std(axis=0)
    _serve(migrated_engine, name, "1", shifted)
    settings_shift = monitor.check(name)
    verdict = settings_shift.verdict
    assert verdict.drift and verdict.severity.value == "critical", verdict.summary()
    assert settings_shift.run_id is not None
    artifacts = [a.path for a in client.list_artifacts(settings_shift.run_id, "report")]
    assert artifacts == ["report/drift_report.html"]
    html = Path(client.download_artifacts(settings_shift.run_id, "report/drift_report.html", str(tmp_path)))
    assert html.stat().st_size > 10_000 and tabular_data.feature_names[0] in html.read_text(errors="replace")

    history = monitor.history(name)
    assert [c.verdict.drift for c in history] == [True, False, False]
    assert history[0].verdict.detectors[0].name == "input" and history[0].verdict.detectors[0].drifted
    alerts = Alerter(sessions).recent(source="drift")
    assert len(alerts) == 1 and alerts[0].alert.key == f"drift:{name}:v1:critical"
