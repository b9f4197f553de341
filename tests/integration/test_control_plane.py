"""Control-plane processes without serving: polling when webhooks are off, and leader fail-over."""

from __future__ import annotations

import time
import uuid
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from control.plane_process import ControlPlaneProcess
from control.settings import ControlSettings
from lifecycle.local_version import ModelPackage
from lifecycle.settings import DatabaseSettings, RegistrySettings, Settings
from registry.mlflow import MlflowModelRegistry
from registry.server import MlflowServerProcess
from rollout.policy import RolloutPolicy
from tests.conftest import free_port

pytestmark = pytest.mark.slow


def _wait(check: object, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return True
        time.sleep(0.25)
    return False


def test_polling_without_webhooks_and_standby_takes_over(
    mlflow_server: MlflowServerProcess, tabular_package: ModelPackage, tmp_path: Path
) -> None:
    registry = MlflowModelRegistry(mlflow_server.url, experiment="control-plane-tests")
    name = f"poll-{uuid.uuid4().hex[:6]}"
    for _ in range(2):
        registry.register(replace(tabular_package, name=name))
    registry.set_alias(name, "champion", "1", actor="test")
    settings = Settings(
        state_dir=tmp_path / "state",
        registry=RegistrySettings(tracking_uri=mlflow_server.url),
        database=DatabaseSettings(url=f"sqlite:///{tmp_path / 'lifecycle.db'}"),
    )
    policy = RolloutPolicy(interval_s=60)
    planes = [
        ControlPlaneProcess(
            settings,
            ControlSettings(port=free_port(), webhooks=False, poll_interval_s=1, leader_ttl_s=3),
            policy,
        )
        for _ in range(2)
    ]
    for plane in planes:
        plane.start()
    try:

        def leaders() -> list[bool]:
            return [httpx.get(f"{p.url}/healthz", timeout=5).json()["leader"] for p in planes]

        assert _wait(lambda: sum(leaders()) == 1, 15), leaders()
        leader, standby = (planes[0], planes[1]) if leaders()[0] else (planes[1], planes[0])
        status = httpx.get(f"{leader.url}/status", timeout=5).json()
        assert status["webhook"] == "disabled (polling)"

        registry.set_alias(name, "challenger", "2", actor="test")  # no webhook: only polling can see it
        started = time.monotonic()
        assert _wait(lambda: httpx.get(f"{leader.url}/rollouts/{name}", timeout=5).status_code == 200, 10)
        print(f"rollout started by polling after {time.monotonic() - started:.1f} s")
        token = (settings.state_path / "control-token").read_text().strip()
        refused = httpx.post(
            f"{standby.url}/rollouts/{name}/pause", headers={"Authorization": f"Bearer {token}"}, timeout=5
        )
        assert refused.status_code == 503 and "standby" in refused.json()["error"]

        leader.kill()
        assert _wait(lambda: httpx.get(f"{standby.url}/healthz", timeout=5).json()["leader"], 15)
        paused = httpx.post(
            f"{standby.url}/rollouts/{name}/pause", headers={"Authorization": f"Bearer {token}"}, timeout=10
        )
        assert paused.status_code == 200 and paused.json()["rollout"]["paused"] is True
        assert paused.json()["rollout"]["challenger"] == "2"  # the same rollout, now driven by the new leader
    finally:
        for plane in planes:
            plane.stop()


def test_the_monitor_job_runs_only_on_the_leader_and_survives_fail_over(
    mlflow_server: MlflowServerProcess,
    tabular_package: ModelPackage,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from sqlalchemy import text
    from typer.testing import CliRunner

    from cli.app import app
    from lifecycle.db import create_db_engine, session_factory
    from monitoring.monitor import drift_history
    from monitoring.settings import MonitorSettings
    from retrain.settings import RetrainSettings

    registry = MlflowModelRegistry(mlflow_server.url, experiment="control-plane-tests")
    name = f"watched-{uuid.uuid4().hex[:6]}"
    registry.register(replace(tabular_package, name=name))
    registry.set_alias(name, "champion", "1", actor="test")
    settings = Settings(
        state_dir=tmp_path / "state",
        registry=RegistrySettings(tracking_uri=mlflow_server.url),
        database=DatabaseSettings(url=f"sqlite:///{tmp_path / 'lifecycle.db'}"),
    )
    monitoring = MonitorSettings(
        interval_s=1, models=[name], min_window=20, experiment="control-plane-monitor"
    )
    planes = [
        ControlPlaneProcess(
            settings,
            ControlSettings(port=free_port(), webhooks=False, leader_ttl_s=3),
            RolloutPolicy(),
            monitoring,
            retraining=RetrainSettings(cron="0 3 * * *"),
        )
        for _ in range(2)
    ]
    for plane in planes:
        plane.start()
    engine = create_db_engine(settings.database_url)
    sessions = session_factory(engine)
    try:
        assert _wait(lambda: len(drift_history(sessions, name)) >= 4, 30)
        time.sleep(2)
        checks = drift_history(sessions, name, limit=100)
        owners = {c.checked_by for c in checks}
        assert len(owners) == 1, owners  # two control planes, one scheduler
        first_owner = owners.pop()
        # one check per second from one scheduler, not two
        span = (checks[0].ts - checks[-1].ts).total_seconds()
        assert len(checks) <= span + 2, (len(checks), span)
        leader = next(
            p for p in planes if httpx.get(f"{p.url}/healthz", timeout=5).json()["owner"] == first_owner
        )
        standby = next(p for p in planes if p is not leader)
        status = httpx.get(f"{leader.url}/monitor/status", timeout=5).json()
        assert status["scheduler_running"] is True and status["next_run"]
        assert httpx.get(f"{standby.url}/monitor/status", timeout=5).json()["scheduler_running"] is False

        leader.kill()
        assert _wait(
            lambda: any(c.checked_by != first_owner for c in drift_history(sessions, name, limit=5)), 30
        )
        with engine.connect() as conn:
            stored = conn.execute(text("SELECT id FROM apscheduler_jobs ORDER BY id")).scalars().all()
        # one job per model and kind, not one per control plane; the nightly retrain survived the fail-over
        assert stored == [f"drift-monitor:{name}", f"retrain-cron:{name}"]

        monkeypatch.setenv("LIFECYCLE_STATE_DIR", str(settings.state_path))
        monkeypatch.setenv("LIFECYCLE_DB_URL", settings.database_url)
        monkeypatch.setenv("LIFECYCLE_CONTROL_PORT", str(standby.control.port))
        monkeypatch.setenv("COLUMNS", "220")
        runner = CliRunner()
        now = runner.invoke(app, ["monitor", "run-now", name])
        assert now.exit_code == 0 and name in now.output and "needs 20" in now.output, now.output
        history = runner.invoke(app, ["drift", "history", name, "--limit", "3"])
        assert history.exit_code == 0 and "drift history" in history.output, history.output
        assert runner.invoke(app, ["monitor", "status"]).exit_code == 0
        assert runner.invoke(app, ["alerts"]).exit_code == 0
        jobs = runner.invoke(app, ["retrain", "history"])
        assert jobs.exit_code == 0 and "no retrain jobs yet" in jobs.output, jobs.output
    finally:
        for plane in planes:
            plane.stop()
        engine.dispose()
