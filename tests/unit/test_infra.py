"""`infra/` checked as far as a machine without a Docker engine or a cluster allows: every Kubernetes
object against the Kubernetes API schema (strict: unknown fields fail), the compose file's wiring
(services, ports, proxy upstreams, scrape targets), every ``LIFECYCLE_*`` variable against the
settings classes that read it, every command against the code it starts, and every metric a Grafana
panel queries against the metrics the services really export."""

from __future__ import annotations

import importlib
import importlib.util
import json
import re
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest
from pydantic_settings import BaseSettings
from sqlalchemy import Engine

from control import metrics as control_metrics
from control.settings import ControlSettings
from lifecycle.alert_channels import AlertSettings
from lifecycle.db import create_db_engine, session_factory, upgrade_to_head
from lifecycle.settings import DatabaseSettings, RegistrySettings, Settings, TrainingSettings
from monitoring.settings import MonitorSettings
from retrain.settings import RetrainSettings
from rollout.policy import RolloutPolicy
from serving.metrics import ServingMetrics
from serving.settings import ServingSettings

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
K8S_VERSION = "1.32"
SETTINGS: dict[str, type[BaseSettings]] = {
    "LIFECYCLE_REGISTRY_": RegistrySettings, "LIFECYCLE_DB_": DatabaseSettings, "LIFECYCLE_TRAIN_": TrainingSettings,
    "LIFECYCLE_CONTROL_": ControlSettings, "LIFECYCLE_SERVING_": ServingSettings, "LIFECYCLE_MONITOR_": MonitorSettings,
    "LIFECYCLE_RETRAIN_": RetrainSettings, "LIFECYCLE_ROLLOUT_": RolloutPolicy, "LIFECYCLE_ALERT_": AlertSettings,
}  # fmt: skip


def _check_lifecycle_env(env: dict[str, str], where: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every LIFECYCLE_* name is a real setting, and the values validate in the class that reads them."""
    for name, value in env.items():
        if not name.startswith("LIFECYCLE_"):
            continue
        if name == "LIFECYCLE_STATE_DIR":
            continue
        prefix = next((p for p in SETTINGS if name.startswith(p)), None)
        assert prefix is not None, f"{where}: {name} has no settings class"
        field = name.removeprefix(prefix).lower()
        assert field in SETTINGS[prefix].model_fields, (
            f"{where}: {name} is not a setting of {SETTINGS[prefix].__name__}"
        )
        monkeypatch.setenv(name, str(value))
    for cls in (*SETTINGS.values(), Settings):
        cls()  # raises a ValidationError naming the variable when a value does not fit


# --- compose -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return dict(yaml.safe_load((INFRA / "compose" / "docker-compose.yml").read_text()))


def test_compose_services_are_wired(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {
        "postgres",
        "minio",
        "mlflow",
        "control",
        "serving-1",
        "serving-2",
        "proxy",
        "prometheus",
        "grafana",
    } <= set(services)
    for name, service in services.items():
        assert "image" in service or "build" in service, name
        depends = service.get("depends_on", [])
        for dependency in depends if isinstance(depends, list) else depends.keys():
            assert dependency in services, f"{name} depends on unknown {dependency}"
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (INFRA / "compose" / source).exists(), f"{name} mounts missing {source}"
    build = services["mlflow"]["build"]
    dockerfile = (INFRA / "compose" / build["context"] / build["dockerfile"]).resolve()
    assert dockerfile.exists()
    for line in dockerfile.read_text().splitlines():
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert (ROOT / source).exists(), f"Dockerfile copies missing {source}"
    assert "torch==2.13.0" in dockerfile.read_text() and "whl/cpu" in dockerfile.read_text()
    copied = {line.split()[1] for line in dockerfile.read_text().splitlines() if line.startswith("COPY ")}
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = {p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]}
    assert packages <= copied, f"the image lacks packages: {sorted(packages - copied)}"


def test_compose_environment_is_made_of_real_settings(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, service in compose["services"].items():
        env = {k: str(v) for k, v in (service.get("environment") or {}).items()}
        with monkeypatch.context() as m:
            _check_lifecycle_env(env, f"compose service {name}", m)


def _command_target(command: list[str]) -> None:
    """``python -m module`` must be importable; a BentoML service ``module:Class`` must exist."""
    assert command[:2] == ["python", "-m"], command
    if command[2] == "bentoml":
        module, attribute = command[4].split(":")
        assert hasattr(importlib.import_module(module), attribute), command
    else:
        assert importlib.util.find_spec(command[2]) is not None, command


def test_compose_commands_start_real_code(compose: dict[str, Any]) -> None:
    for name in ("mlflow", "control", "serving-1", "serving-2"):
        _command_target(compose["services"][name]["command"])


def test_proxy_and_prometheus_point_at_the_serving_replicas_and_control_plane(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    serving_port = services["serving-1"]["command"][services["serving-1"]["command"].index("--port") + 1]
    upstreams = re.findall(r"server (\S+):(\d+)", (INFRA / "compose" / "nginx" / "nginx.conf").read_text())
    assert sorted(upstreams) == [("serving-1", serving_port), ("serving-2", serving_port)]
    prometheus = yaml.safe_load((INFRA / "compose" / "prometheus" / "prometheus.yml").read_text())
    targets = {
        job["job_name"]: [t for c in job["static_configs"] for t in c["targets"]]
        for job in prometheus["scrape_configs"]
    }
    assert sorted(targets["serving"]) == [f"serving-1:{serving_port}", f"serving-2:{serving_port}"]
    control_port = services["control"]["environment"]["LIFECYCLE_CONTROL_PORT"]
    assert targets["control"] == [f"control:{control_port}"]


# --- Grafana -------------------------------------------------------------------------------------


@pytest.fixture
def migrated_sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'metrics.db'}")
    upgrade_to_head(engine)
    yield engine
    engine.dispose()


def _exported_metric_names(engine: Engine) -> set[str]:
    registry = CollectorRegistry()
    ServingMetrics.create(registry)
    text = generate_latest(registry).decode() + control_metrics.render(session_factory(engine)).decode()
    names = set(re.findall(r"^# TYPE (\S+) (\S+)", text, re.MULTILINE))
    exported: set[str] = set()
    for name, kind in names:
        exported.add(name)
        if kind == "counter":
            exported.add(f"{name}_total")
        if kind == "histogram":
            exported |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
    return exported


def test_every_dashboard_query_uses_metrics_the_services_export(migrated_sqlite_engine: Engine) -> None:
    dashboard = json.loads((INFRA / "compose" / "grafana" / "dashboards" / "lifecycle.json").read_text())
    exported = _exported_metric_names(migrated_sqlite_engine)
    queried = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"\b(lifecycle_[a-z_]+)\b", target["expr"])
    }
    assert queried, "the dashboard queries nothing"
    assert queried <= exported, f"queried but not exported: {sorted(queried - exported)}"
    titles = " ".join(p["title"].lower() for p in dashboard["panels"])
    for topic in ("traffic share", "latency", "drift", "alerts"):
        assert topic in titles


# --- Kubernetes ----------------------------------------------------------------------------------


def _k8s_documents() -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((INFRA / "k8s" / "kustomization.yaml").read_text())
    if shutil.which("kubectl"):
        rendered = subprocess.run(
            ["kubectl", "kustomize", str(INFRA / "k8s")],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
        return [d for d in yaml.safe_load_all(rendered) if d]
    docs = []
    for resource in kustomization["resources"]:
        docs += [d for d in yaml.safe_load_all((INFRA / "k8s" / resource).read_text()) if d]
    return docs


def test_kubernetes_manifests_validate_against_the_api_schema() -> None:
    docs = _k8s_documents()
    kinds = sorted(f"{d['kind']}/{d['metadata']['name']}" for d in docs)
    assert {"Deployment/serving", "Deployment/control-plane", "Deployment/mlflow",
            "HorizontalPodAutoscaler/serving"} <= set(kinds), kinds  # fmt: skip
    for doc in docs:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_kubernetes_objects_are_consistent(monkeypatch: pytest.MonkeyPatch) -> None:
    docs = _k8s_documents()
    by_kind: dict[str, dict[str, dict[str, Any]]] = {}
    for doc in docs:
        by_kind.setdefault(doc["kind"], {})[doc["metadata"]["name"]] = doc
    deployments = by_kind["Deployment"]
    assert deployments["control-plane"]["spec"]["replicas"] == 1
    assert deployments["control-plane"]["spec"]["strategy"]["type"] == "Recreate"
    hpa = by_kind["HorizontalPodAutoscaler"]["serving"]["spec"]
    assert hpa["scaleTargetRef"]["name"] in deployments and hpa["minReplicas"] >= 2
    for service in by_kind["Service"].values():
        selector = service["spec"]["selector"]
        matches = [
            d for d in deployments.values()
            if selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()
        ]  # fmt: skip
        assert matches, f"Service {service['metadata']['name']} selects no Deployment"
    config = by_kind["ConfigMap"]["lifecycle-config"]["data"]
    secret = by_kind["Secret"]["lifecycle-secrets"]["stringData"]
    _check_lifecycle_env({**config, **secret}, "k8s", monkeypatch)
    for name, deployment in deployments.items():
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e["value"] for e in container.get("env", [])}
        with monkeypatch.context() as m:
            _check_lifecycle_env(env, f"k8s Deployment {name}", m)
        command = container["command"]
        if command[0] == "python":
            _command_target(command)
