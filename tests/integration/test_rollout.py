"""Rollouts end to end with real processes: an MLflow server, the control plane and a BentoML
serving process, with a client sending requests the whole time.

- a good challenger (an INT8 variant of the champion), set through the REST endpoint the MLflow UI
  uses, goes shadow → canary → champion on its own, driven by the webhook;
- a bad challenger (wrong outputs) is rolled back with no client-visible error;
- forged, stale and replayed webhooks are refused;
- ``kill -9`` of the control plane mid-canary, then a restart, resumes the same rollout and step.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import httpx
import numpy as np
import pytest
import torch
from mlflow import MlflowClient

from control.plane import WEBHOOK_NAME
from control.plane_process import ControlPlaneProcess
from control.settings import ControlSettings
from lifecycle.alerts import Alerter
from lifecycle.data import DataSplits
from lifecycle.db import create_db_engine, session_factory
from lifecycle.examples import get_example
from lifecycle.local_version import ModelPackage
from lifecycle.settings import DatabaseSettings, RegistrySettings, Settings
from lifecycle.version_builder import package_onnx_model, package_torch_model
from optimize.recipes.ort_quant import int8_static
from optimize.variant import Parent, RecipeOptions
from registry.mlflow import MlflowModelRegistry
from registry.server import MlflowServerProcess
from registry.webhooks import sign
from rollout.policy import RolloutPolicy
from serving.bentoml_process import ServingProcess
from serving.settings import ServingSettings
from tests.conftest import free_port

pytestmark = pytest.mark.slow

POLICY = RolloutPolicy(
    interval_s=1.5, steps=(20, 50, 100), threshold=2, min_shadow_pairs=40, min_canary_requests=15,
    min_canary_pairs=10, canary_mirror_share=0.5,
)  # fmt: skip


@dataclass
class Load:
    """One client thread sending single-row requests until stopped; every answer is kept."""

    url: str
    rows: np.ndarray
    statuses: Counter[int] = field(default_factory=Counter)
    roles: Counter[tuple[str, str]] = field(default_factory=Counter)
    _stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        rng = np.random.default_rng(0)
        with httpx.Client(base_url=self.url, timeout=30) as client:
            while not self._stop.is_set():
                row = self.rows[rng.integers(len(self.rows))]
                headers = {"X-Request-Key": uuid.uuid4().hex} if rng.random() < 0.5 else {}
                r = client.post("/v1/predict", json={"instances": [row.tolist()]}, headers=headers)
                self.statuses[r.status_code] += 1
                if r.status_code == 200:
                    body = r.json()
                    self.roles[(body["version"], body["role"])] += 1
                time.sleep(0.004)

    def stop(self) -> None:
        self._stop.set()


@dataclass
class RolloutStack:
    name: str
    registry: MlflowModelRegistry
    settings: Settings
    control: ControlPlaneProcess
    control_settings: ControlSettings
    serving: ServingProcess
    load: Load
    versions: dict[str, str]

    def rollout(self) -> dict[str, object]:
        r = httpx.get(f"{self.control.url}/rollouts/{self.name}", timeout=10)
        return dict(r.json()) if r.status_code == 200 else {}

    def wait(
        self, check: Callable[[dict[str, object]], bool], timeout_s: float, what: str
    ) -> dict[str, object]:
        deadline = time.monotonic() + timeout_s
        status: dict[str, object] = {}
        while time.monotonic() < deadline:
            status = self.rollout()
            if status and check(status):
                return status
            time.sleep(0.25)
        raise AssertionError(
            f"{what} not reached in {timeout_s} s; last status {status}\n{self.control.log_tail()}"
        )


def _negated(package: ModelPackage, data: DataSplits) -> ModelPackage:
    """Same architecture, wrong outputs: the last layer's logits negated (every class flips)."""
    example = get_example("breast-cancer-mlp")
    module, architecture, _ = example.train(data, seed=0)
    last = [m for m in module.modules() if isinstance(m, torch.nn.Linear)][-1]
    with torch.no_grad():
        last.weight.mul_(-1)
        last.bias.mul_(-1)
    return package_torch_model(
        package.name, module, data, architecture=architecture, tags={"test": "wrong-outputs"}
    )


def _int8(package: ModelPackage, data: DataSplits, workdir: Path) -> ModelPackage:
    parent = Parent.of_splits(package.name, "1", package.onnx_model, package.contract, data)
    variant = int8_static(parent, RecipeOptions(), workdir)
    return package_onnx_model(
        package.name, variant.files["model.onnx"].read_bytes(), data, contract=package.contract,
        tags={"lifecycle.recipe": "ort-int8-static"},
    )  # fmt: skip


@pytest.fixture(scope="module")
def stack(
    mlflow_server: MlflowServerProcess,
    tabular_package: ModelPackage,
    tabular_data: DataSplits,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RolloutStack]:
    tmp = tmp_path_factory.mktemp("rollout")
    name = f"rollout-{uuid.uuid4().hex[:6]}"
    registry = MlflowModelRegistry(mlflow_server.url, experiment="rollout-tests")
    champion = replace(tabular_package, name=name)
    versions = {
        "fp32": registry.register(champion).version,
        "int8": registry.register(_int8(champion, tabular_data, tmp)).version,
        "wrong": registry.register(_negated(champion, tabular_data)).version,
    }
    registry.set_alias(name, "champion", versions["fp32"], actor="test")
    settings = Settings(
        state_dir=tmp / "state",
        registry=RegistrySettings(tracking_uri=mlflow_server.url),
        database=DatabaseSettings(url=f"sqlite:///{tmp / 'lifecycle.db'}"),
    )
    # alias polling every 30 s: a rollout that starts within seconds was started by the webhook
    control_settings = ControlSettings(
        port=free_port(), tick_interval_s=0.2, poll_interval_s=30, leader_ttl_s=3, watch=[f"{name}-prod"]
    )
    control = ControlPlaneProcess(settings, control_settings, POLICY)
    serving = ServingProcess(settings, ServingSettings(model=name, port=free_port(), poll_interval_s=0.5))
    control.start()
    serving.start()
    load = Load(serving.url, tabular_data.x_test)
    thread = threading.Thread(target=load.run, daemon=True)
    try:
        deadline = time.monotonic() + 60
        while not serving.ready() and time.monotonic() < deadline:
            time.sleep(0.25)
        thread.start()
        yield RolloutStack(name, registry, settings, control, control_settings, serving, load, versions)
    finally:
        load.stop()
        thread.join(30)
        serving.stop()
        control.stop()


def _set_alias_like_the_ui(tracking_uri: str, name: str, alias: str, version: str) -> None:
    r = httpx.post(
        f"{tracking_uri}/ajax-api/2.0/mlflow/registered-models/alias",
        json={"name": name, "alias": alias, "version": version},
        timeout=10,
    )
    assert r.status_code == 200, r.text


def test_webhook_registered_and_forgeries_refused(stack: RolloutStack) -> None:
    status = httpx.get(f"{stack.control.url}/status", timeout=10).json()
    assert status["leader"] is True and status["webhook"] == "registered", status
    secret = (stack.settings.state_path / "webhook-secret").read_text().strip()
    url = f"{stack.control.url}/webhooks/mlflow"
    body = (
        b'{"entity": "model_version_alias", "action": "deleted", "data": {"name": "%s", "alias": "x"}}'
        % stack.name.encode()
    )

    def deliver(signature_secret: str, ts: float, delivery: str) -> httpx.Response:
        headers = {
            "X-MLflow-Delivery-Id": delivery,
            "X-MLflow-Timestamp": str(int(ts)),
            "X-MLflow-Signature": sign(signature_secret, delivery, str(int(ts)), body),
            "Content-Type": "application/json",
        }
        return httpx.post(url, content=body, headers=headers, timeout=10)

    assert httpx.post(url, content=body, timeout=10).status_code == 401  # unsigned
    forged = deliver("not-the-secret", time.time(), uuid.uuid4().hex)
    assert forged.status_code == 401 and "signature" in forged.json()["error"]
    stale = deliver(secret, time.time() - 3600, uuid.uuid4().hex)
    assert stale.status_code == 401 and "tolerance" in stale.json()["error"]
    delivery = uuid.uuid4().hex
    assert deliver(secret, time.time(), delivery).status_code == 200
    replayed = deliver(secret, time.time(), delivery)
    assert replayed.status_code == 403 and "already processed" in replayed.json()["error"]
    assert httpx.post(f"{stack.control.url}/rollouts/{stack.name}/pause", timeout=10).status_code == 401
    wrong_token = httpx.post(
        f"{stack.control.url}/rollouts/{stack.name}/pause",
        headers={"Authorization": "Bearer nope"},
        timeout=10,
    )
    assert wrong_token.status_code == 403


def test_good_challenger_set_in_the_ui_goes_shadow_canary_champion_on_its_own(stack: RolloutStack) -> None:
    int8 = stack.versions["int8"]
    started = time.monotonic()
    _set_alias_like_the_ui(stack.registry.tracking_uri, stack.name, "challenger", int8)
    first = stack.wait(lambda s: s["rollout"]["challenger"] == int8, 10, "rollout start via webhook")  # type: ignore[index]
    assert first["rollout"]["phase"] in ("shadow", "canary")  # type: ignore[index]
    done = stack.wait(
        lambda s: s["rollout"]["phase"] != "shadow" and s["rollout"]["phase"] != "canary", 90, "promotion"
    )  # type: ignore[index]
    assert done["rollout"]["phase"] == "promoted", done  # type: ignore[index]
    assert stack.registry.aliases(stack.name) == {"champion": int8}
    outcomes = [v["outcome"] for v in done["verdicts"]]  # type: ignore[union-attr]
    # One failed analysis is what the policy's threshold exists to absorb: on this shared 2-core machine
    # a canary p99 over 15 requests can catch a stall (seen once, in a fresh-clone CI run). Fewer than the
    # threshold in a row, and the rollout still promoted; every failed verdict is shown.
    failed = [v for v in done["verdicts"] if v["outcome"] == "fail"]  # type: ignore[union-attr]
    assert "pass" in outcomes and len(failed) < POLICY.threshold, failed
    passed = [v for v in done["verdicts"] if v["outcome"] == "pass"]  # type: ignore[union-attr]
    checks = {c["name"]: c for c in passed[-1]["checks"]}
    assert checks["error_rate"]["passed"] is True and checks["error_rate"]["n"] >= POLICY.min_canary_requests
    print(
        f"promoted in {time.monotonic() - started:.1f} s; answers by (version, role): {dict(stack.load.roles)}"
    )
    deadline = time.monotonic() + 10
    while stack.load.roles[(int8, "champion")] == 0 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert stack.load.roles[(int8, "canary")] > 0, (
        "the challenger answered part of the traffic during the canary"
    )
    assert stack.load.roles[(int8, "champion")] > 0, "after promotion the new champion answers"
    assert set(stack.load.statuses) == {200}, stack.load.statuses


def test_bad_challenger_is_rolled_back_without_client_errors(stack: RolloutStack) -> None:
    wrong = stack.versions["wrong"]
    champion = stack.registry.aliases(stack.name)["champion"]
    stack.registry.set_alias(stack.name, "challenger", wrong, actor="test")
    started = time.monotonic()
    done = stack.wait(
        lambda s: s["rollout"]["challenger"] == wrong and s["rollout"]["phase"] == "rolled_back",
        60,
        "rollback",  # type: ignore[index]
    )
    elapsed = time.monotonic() - started
    failing = [c["name"] for v in done["verdicts"] for c in v["checks"] if c["passed"] is False]  # type: ignore[union-attr]
    assert "agreement" in failing, done
    assert stack.registry.aliases(stack.name) == {"champion": champion}
    tags = stack.registry.get_version(stack.name, wrong).tags
    assert tags["lifecycle.rollout"] == "rolled_back" and "agreement" in tags["lifecycle.rollout_reason"]
    engine = create_db_engine(stack.settings.database_url)
    alerts = Alerter(session_factory(engine)).recent(source="rollout")
    engine.dispose()
    assert any(a.alert.key == f"rollout:{stack.name}:{wrong}" and a.deliveries["log"]["ok"] for a in alerts)  # type: ignore[index]
    assert set(stack.load.statuses) == {200}, stack.load.statuses
    print(
        f"rolled back {elapsed:.1f} s after the alias was set (interval {POLICY.interval_s} s, threshold {POLICY.threshold})"
    )


def test_kill_9_mid_canary_then_restart_resumes_the_same_step(stack: RolloutStack) -> None:
    challenger = stack.versions["fp32"]
    assert stack.registry.aliases(stack.name)["champion"] != challenger
    stack.registry.set_alias(stack.name, "challenger", challenger, actor="test")
    canary = stack.wait(
        lambda s: s["rollout"]["challenger"] == challenger and s["rollout"]["phase"] == "canary",
        60,
        "canary",  # type: ignore[index]
    )
    rollout_id, step = canary["rollout"]["id"], canary["rollout"]["step"]  # type: ignore[index]
    stack.control.kill()
    stack.control.start()
    hooks = [w for w in MlflowClient(stack.registry.tracking_uri).list_webhooks() if w.name == WEBHOOK_NAME]
    assert len(hooks) == 1 and hooks[0].url.startswith(stack.control.url)  # re-registered, not duplicated
    resumed = stack.rollout()
    assert resumed["rollout"]["id"] == rollout_id  # type: ignore[index]
    assert resumed["rollout"]["phase"] in ("canary", "promoted") and resumed["rollout"]["step"] >= step  # type: ignore[index]
    done = stack.wait(lambda s: s["rollout"]["phase"] == "promoted", 90, "promotion after restart")  # type: ignore[index]
    assert done["rollout"]["id"] == rollout_id  # type: ignore[index]
    assert stack.registry.aliases(stack.name)["champion"] == challenger
    assert set(stack.load.statuses) == {200}, stack.load.statuses


def test_cli_start_pause_status_resume_abort(stack: RolloutStack, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from cli.app import app

    monkeypatch.setenv("LIFECYCLE_STATE_DIR", str(stack.settings.state_path))
    monkeypatch.setenv("LIFECYCLE_CONTROL_PORT", str(stack.control_settings.port))
    monkeypatch.setenv("COLUMNS", "200")
    runner = CliRunner()
    champion = stack.registry.aliases(stack.name)["champion"]
    challenger = stack.versions["int8"] if champion != stack.versions["int8"] else stack.versions["fp32"]

    started = runner.invoke(app, ["rollout", "start", stack.name, challenger])
    assert started.exit_code == 0, started.output
    assert f"v{champion} (champion) → v{challenger} (challenger)" in started.output
    paused = runner.invoke(app, ["rollout", "pause", stack.name])
    assert paused.exit_code == 0 and "(paused)" in paused.output, paused.output
    time.sleep(3 * POLICY.interval_s)
    status = runner.invoke(app, ["rollout", "status", stack.name])
    assert status.exit_code == 0 and "shadow (paused)" in status.output, (
        status.output
    )  # no progress while paused
    resumed = runner.invoke(app, ["rollout", "resume", stack.name])
    assert resumed.exit_code == 0 and "(paused)" not in resumed.output
    stack.wait(lambda s: s["rollout"]["phase"] == "canary", 60, "canary after resume")  # type: ignore[index]
    status = runner.invoke(app, ["rollout", "status", stack.name])
    assert "last verdicts" in status.output and "agreement" in status.output, status.output
    aborted = runner.invoke(app, ["rollout", "abort", stack.name])
    assert aborted.exit_code == 0 and "aborted" in aborted.output, aborted.output
    assert stack.registry.aliases(stack.name) == {"champion": champion}
    again = runner.invoke(app, ["rollout", "pause", stack.name])
    assert again.exit_code == 1 and "has no active rollout" in again.output
    unknown = runner.invoke(app, ["rollout", "start", stack.name, "999"])
    assert unknown.exit_code == 1 and "does not exist" in unknown.output
    assert set(stack.load.statuses) == {200}, stack.load.statuses


def test_mlflow_promote_model_into_a_watched_production_model_starts_a_rollout(stack: RolloutStack) -> None:
    """MLflow 3's "Promote model" button copies a version into another registered model."""
    client = MlflowClient(stack.registry.tracking_uri)
    prod = f"{stack.name}-prod"
    client.copy_model_version(f"models:/{stack.name}/{stack.versions['fp32']}", prod)
    deadline = time.monotonic() + 15
    while stack.registry.aliases(prod).get("champion") != "1" and time.monotonic() < deadline:
        time.sleep(0.25)
    assert stack.registry.aliases(prod) == {"champion": "1"}  # the first version becomes champion
    client.copy_model_version(f"models:/{stack.name}/{stack.versions['int8']}", prod)
    r = None
    while time.monotonic() < deadline + 15:
        r = httpx.get(f"{stack.control.url}/rollouts/{prod}", timeout=10)
        if r.status_code == 200:
            break
        time.sleep(0.25)
    assert r is not None and r.status_code == 200, r.text if r is not None else "no answer"
    rollout = r.json()["rollout"]
    assert (rollout["champion"], rollout["challenger"], rollout["phase"]) == ("1", "2", "shadow")
    assert stack.registry.aliases(prod) == {"champion": "1", "challenger": "2"}
