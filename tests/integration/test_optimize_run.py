"""An optimization run against a real MLflow server: child runs, gates, lineage, loadable variants."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from mlflow import MlflowClient

from lifecycle.data import DataSplits
from lifecycle.examples import get_example
from lifecycle.local_version import ModelPackage
from lifecycle.runtimes.load import load_version
from lifecycle.training import accuracy
from lifecycle.version_builder import package_torch_model
from optimize.gates import GateConfig
from optimize.run import OptimizeReport, optimize
from optimize.variant import RecipeOptions
from registry.memory import InMemoryModelRegistry, InMemoryRunTracker
from registry.mlflow import MlflowModelRegistry
from registry.server import MlflowServerProcess

RECIPES = ["onnx-fp32", "ort-int8-static", "ort-int8-dynamic", "openvino-int8", "distill", "tensorrt-fp16"]


@pytest.fixture(scope="module")
def run(
    mlflow_server: MlflowServerProcess,
    tabular_package: ModelPackage,
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[MlflowModelRegistry, OptimizeReport]:
    registry = MlflowModelRegistry(mlflow_server.url, experiment="optimize-tests")
    name = f"opt-{uuid.uuid4().hex[:6]}"
    registry.register(replace(tabular_package, name=name))
    report = optimize(
        registry, registry, name, "1", tmp_path_factory.mktemp("optimize"), recipes=RECIPES,
        options=RecipeOptions(distill_epochs=30), rounds=50, batch_rounds=5,
    )  # fmt: skip
    return registry, report


def test_every_recipe_has_a_child_run_and_an_outcome(run: tuple[MlflowModelRegistry, OptimizeReport]) -> None:
    registry, report = run
    client = MlflowClient(registry.tracking_uri)
    children = client.search_runs(
        [client.get_run(report.run_id).info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{report.run_id}'",
    )
    assert sorted(r.info.run_name for r in children) == sorted(RECIPES)
    status = {r.info.run_name: r.data.tags.get("lifecycle.status") for r in children}
    assert status["tensorrt-fp16"] == "skipped"
    assert all(s in ("registered", "rejected", "skipped") for s in status.values()), status
    artifacts = {a.path for a in client.list_artifacts(report.run_id)}
    assert {"table.md", "table.json", "pareto.png"} <= artifacts
    rows = {r.name: r for r in report.rows}
    assert {"ort-fp32", "torch-fp32", "openvino-fp32-baseline"} <= set(rows)
    assert rows["tensorrt-fp16"].reason.startswith("TensorRT is not installed")


def test_registered_variants_carry_lineage_and_reproduce_their_accuracy(
    run: tuple[MlflowModelRegistry, OptimizeReport], tabular_data: DataSplits, tmp_path: Path
) -> None:
    registry, report = run
    registered = report.registered()
    assert registered, report.table
    for row in registered:
        assert row.version is not None
        version = registry.get_version(report.name, row.version)
        tags = version.tags
        assert tags["lifecycle.parent_version"] == "1"
        assert tags["lifecycle.recipe"] == row.name
        assert tags["lifecycle.run_id"] == row.run_id
        assert tags["lifecycle.optimize_run_id"] == report.run_id
        assert tags["lifecycle.precision"] == row.precision
        assert tags["lifecycle.runtime"] == row.runtime
        assert len(tags["lifecycle.artifact_sha256"]) == 64
        assert all(g["passed"] for g in json.loads(tags["lifecycle.gates"]).values())
        local = registry.download(report.name, row.version, tmp_path / row.name)
        runner = load_version(local, dict(tags))
        assert runner.precision == row.precision
        measured = accuracy(runner.run(tabular_data.x_test), tabular_data.y_test)
        assert measured == pytest.approx(version.metrics["accuracy"]), row.name
        np.testing.assert_allclose(local.reference().logits, runner.run(local.reference().x), atol=1e-4)


@pytest.mark.slow
def test_a_slower_variant_is_rejected_by_the_speed_gate(tmp_path: Path) -> None:
    example = get_example("digits-student")
    data = example.load_data(0)
    module, architecture, _ = example.train(data, seed=0)
    registry, tracker = InMemoryModelRegistry(), InMemoryRunTracker()
    registry.register(package_torch_model("cnn", module, data, architecture=architecture))
    # FP16 on ONNX Runtime's CPU provider runs about as fast as FP32: a 2× target (with no absolute
    # slack: the paired ratio alone decides) rejects it
    gates = GateConfig(max_latency_ratio=0.5, latency_slack_ms=-1.0)
    report = optimize(
        registry, tracker, "cnn", "1", tmp_path, recipes=["onnx-fp16"], gate_config=gates, rounds=100,
        batch_rounds=5,
    )  # fmt: skip
    (row,) = [r for r in report.rows if r.name == "onnx-fp16"]
    assert row.status == "rejected", report.table
    assert "batch-1 latency" in row.reason
    assert registry.list_versions("cnn")[-1].version == "1"  # nothing registered
    child = next(r for r in tracker.runs.values() if r.name == "onnx-fp16")
    assert child.tags["lifecycle.status"] == "rejected" and "latency" in child.tags["lifecycle.reason"]
