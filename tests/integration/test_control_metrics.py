"""The control plane's /metrics body, rendered from a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import uuid

from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine

from control import metrics
from lifecycle.alerts import Alert, Alerter
from lifecycle.db import session_factory
from lifecycle.db.schema import DriftCheckRow, RolloutRow
from lifecycle.db.types import utcnow
from lifecycle.names import Severity
from retrain.jobs import RetrainJobs


def _samples(body: bytes) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }


def test_metrics_report_rollout_shares_latest_drift_alerts_and_retrains(migrated_engine: Engine) -> None:
    sessions = session_factory(migrated_engine)
    model = f"m-{uuid.uuid4().hex[:6]}"
    now = utcnow()
    with sessions.begin() as s:
        s.add(RolloutRow(
            model_name=model, champion="1", challenger="2", phase="canary", step=1, failures=0, paused=False,
            canary_weight=0.25, mirror_share=0.5, started_at=now, step_started_at=now, updated_at=now,
            started_by="test", reason="", policy={},
        ))  # fmt: skip
        for drift, p in ((False, 0.4), (True, 1e-9)):  # the second, newer check is the one reported
            s.add(DriftCheckRow(
                ts=now, model_name=model, version="1", window_start=None, window_end=None, n_reference=100,
                n_current=100, drift=drift, severity="critical" if drift else "none", summary="",
                detectors=[{"name": "input", "p_value": p, "statistic": 0.5}], seconds=0.1, mlflow_run_id=None,
                checked_by="test",
            ))  # fmt: skip
    Alerter(sessions).raise_alert(Alert("drift", Severity.CRITICAL, f"drift:{model}", "t", "m"))
    RetrainJobs(sessions).create(model, "drift", "run-1")

    got = _samples(metrics.render(sessions))
    rollout = frozenset({("model", model), ("champion", "1"), ("challenger", "2"), ("phase", "canary")})
    assert got[("lifecycle_rollout_canary_share", rollout)] == 0.25
    assert got[("lifecycle_rollout_mirror_share", rollout)] == 0.5
    detector = frozenset({("model", model), ("version", "1"), ("detector", "input")})
    assert got[("lifecycle_drift_p_value", detector)] == 1e-9
    assert got[("lifecycle_drift_detected", frozenset({("model", model), ("version", "1")}))] == 1.0
    assert got[("lifecycle_alerts", frozenset({("source", "drift"), ("severity", "critical")}))] >= 1
    assert got[("lifecycle_retrain_jobs", frozenset({("model", model), ("status", "running")}))] == 1
