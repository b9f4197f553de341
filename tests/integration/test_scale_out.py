"""The shared-state design of the production shape (infra/), proven locally: two serving processes on
one PostgreSQL database follow the same rollout plan that one control plane writes, and what they
answered adds up, row for row, in the shared prediction log."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from control.plane_process import ControlPlaneProcess
from control.settings import ControlSettings
from lifecycle.data import DataSplits
from lifecycle.db import create_db_engine
from lifecycle.db.schema import PredictionRow
from lifecycle.local_version import ModelPackage
from lifecycle.settings import DatabaseSettings, RegistrySettings, Settings
from registry.mlflow import MlflowModelRegistry
from registry.server import MlflowServerProcess
from rollout.policy import RolloutPolicy
from serving.bentoml_process import ServingProcess
from serving.settings import ServingSettings
from tests.conftest import free_port, fresh_postgres_database
from tests.integration.test_rollout import _int8

pytestmark = [pytest.mark.slow, pytest.mark.postgres]
# no shadow, a canary held at 50 % (an hour per step): the plan stays put while the replicas are measured
POLICY = RolloutPolicy(shadow=False, steps=(50, 100), interval_s=3600, canary_mirror_share=0.0)
REQUESTS_PER_REPLICA = 300


@pytest.fixture
def postgres_url() -> Iterator[str]:
    with fresh_postgres_database() as url:
        yield url


def test_two_serving_replicas_follow_one_plan_and_their_logs_add_up(
    mlflow_server: MlflowServerProcess,
    tabular_package: ModelPackage,
    tabular_data: DataSplits,
    postgres_url: str,
    tmp_path: Path,
) -> None:
    name = f"scale-{uuid.uuid4().hex[:6]}"
    registry = MlflowModelRegistry(mlflow_server.url, experiment="scale-out-tests")
    champion = registry.register(replace(tabular_package, name=name)).version
    challenger = registry.register(_int8(replace(tabular_package, name=name), tabular_data, tmp_path)).version
    registry.set_alias(name, "champion", champion, actor="test")
    settings = Settings(
        state_dir=tmp_path / "state",
        registry=RegistrySettings(tracking_uri=mlflow_server.url),
        database=DatabaseSettings(url=postgres_url),
    )
    control = ControlPlaneProcess(
        settings, ControlSettings(port=free_port(), tick_interval_s=0.2, poll_interval_s=1), POLICY
    )
    replicas = [
        ServingProcess(settings, ServingSettings(model=name, port=free_port(), poll_interval_s=0.5))
        for _ in range(2)
    ]
    control.start()
    try:
        for replica in replicas:
            replica.start()
        deadline = time.monotonic() + 60
        while not all(r.ready() for r in replicas) and time.monotonic() < deadline:
            time.sleep(0.25)
        registry.set_alias(name, "challenger", challenger, actor="test")

        def plans() -> list[object]:
            return [httpx.get(f"{r.url}/admin/status", timeout=10).json()["rollout"] for r in replicas]

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            seen = plans()
            if all(p and p["loaded"] and p["canary_weight"] == 0.5 for p in seen):  # type: ignore[index]
                break
            time.sleep(0.25)
        seen = plans()
        assert all(p == seen[0] for p in seen) and seen[0] is not None, seen
        assert seen[0]["challenger"] == challenger and seen[0]["canary_weight"] == 0.5  # type: ignore[index]

        answered: dict[int, Counter[str]] = {i: Counter() for i in range(len(replicas))}
        failures: list[str] = []

        def send(i: int, replica: ServingProcess) -> None:
            with httpx.Client(base_url=replica.url, timeout=30) as client:
                for n in range(REQUESTS_PER_REPLICA):
                    row = tabular_data.x_test[n % len(tabular_data.x_test)].tolist()
                    r = client.post(
                        "/v1/predict", json={"instances": [row]}, headers={"X-Request-Key": uuid.uuid4().hex}
                    )
                    if r.status_code == 200:
                        answered[i][r.json()["role"]] += 1
                    else:
                        failures.append(f"replica {i}: HTTP {r.status_code} {r.text[:200]}")

        threads = [threading.Thread(target=send, args=(i, r)) for i, r in enumerate(replicas)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        # one 400 on replica 0 only: each replica's /metrics reports its own process (BentoML empties
        # a metrics directory shared through a common BENTOML_HOME when the next service starts)
        assert (
            httpx.post(f"{replicas[0].url}/v1/predict", json={"instances": []}, timeout=10).status_code == 400
        )
        time.sleep(2 * ServingSettings().metrics_flush_interval_s)  # our counters trail by one flush
        for i, replica in enumerate(replicas):
            text = httpx.get(f"{replica.url}/metrics", timeout=10).text
            assert "lifecycle_requests_total" in text, i
            assert ('status="400"' in text) == (i == 0), f"replica {i} reports another replica's metrics"
    finally:
        for replica in replicas:
            replica.stop()  # flushes each replica's prediction log
        control.stop()

    assert failures == []
    for i, roles in answered.items():
        assert sum(roles.values()) == REQUESTS_PER_REPLICA
        # both replicas split by the same 50 % plan: 300 fair coin flips land in 0.38–0.62 (p > 0.999)
        assert 0.38 <= roles["canary"] / REQUESTS_PER_REPLICA <= 0.62, (i, roles)
    engine = create_db_engine(postgres_url)
    try:
        with engine.connect() as conn:
            logged = dict(
                conn.execute(
                    select(PredictionRow.role, func.count())
                    .where(PredictionRow.model_name == name, PredictionRow.error.is_(None))
                    .group_by(PredictionRow.role)
                ).all()
            )
    finally:
        engine.dispose()
    total = answered[0] + answered[1]
    assert logged == dict(total), (logged, total)  # every answer of both replicas, once
    print(f"replica answers {dict(answered[0])} / {dict(answered[1])}; logged {logged}")
