"""Optimization runs on real pretrained models that no one here wrote: the task's metric is what
the gates judge, recipes that do not fit a graph say why, and a variant slower than its FP32 is
rejected in the open."""

from __future__ import annotations

from pathlib import Path

import joblib
import numpy as np
import pytest
from sklearn.datasets import load_diabetes
from sklearn.ensemble import GradientBoostingRegressor

from intake import pretrained
from intake.register import package_sklearn
from lifecycle.local_version import ModelPackage
from optimize.run import OptimizeReport, optimize
from registry.memory import InMemoryModelRegistry, InMemoryRunTracker

pytestmark = pytest.mark.slow


def _optimize(package: ModelPackage, recipes: list[str], workdir: Path) -> OptimizeReport:
    registry, tracker = InMemoryModelRegistry(), InMemoryRunTracker()
    registry.register(package)
    return optimize(registry, tracker, package.name, "1", workdir, recipes=recipes, rounds=40, batch_rounds=3)


def test_orientation_classifier_int8_is_slower_and_rejected_in_the_open(tmp_path: Path) -> None:
    package = pretrained.ppocr_cls(tmp_path, n=120)
    report = _optimize(package, ["ort-int8-static", "ort-int8-dynamic", "distill"], tmp_path / "run")
    rows = {r.name: r for r in report.rows}
    assert rows["ort-fp32"].metric == "accuracy" and rows["ort-fp32"].value == pytest.approx(
        package.metrics["test_accuracy"]
    )
    int8 = rows["ort-int8-static"]
    assert int8.status == "rejected" and "batch-1 latency" in int8.reason, report.table
    assert int8.fidelity is not None and int8.fidelity >= 0.99  # faithful, just not faster
    assert rows["ort-int8-dynamic"].status == "skipped" and "convolutional" in rows["ort-int8-dynamic"].reason
    assert rows["distill"].status == "skipped" and "tabular classifiers" in rows["distill"].reason


def test_minilm_dynamic_int8_keeps_the_embedding(tmp_path: Path) -> None:
    package = pretrained.minilm(tmp_path, n=48, seed=1)
    report = _optimize(package, ["ort-int8-dynamic"], tmp_path / "run")
    row = next(r for r in report.rows if r.name == "ort-int8-dynamic")
    assert row.metric == "cosine" and row.value is not None and row.value >= 0.99, report.table
    assert row.status == "registered", report.table
    assert row.precision == "int8" and row.batch == 8


def test_yolov8n_static_int8_is_judged_by_its_boxes(tmp_path: Path) -> None:
    package = pretrained.yolov8n(tmp_path, n=60)
    report = _optimize(package, ["ort-int8-static"], tmp_path / "run")
    row = next(r for r in report.rows if r.name == "ort-int8-static")
    assert row.metric == "box_agreement" and row.status in ("registered", "rejected"), report.table
    # the head's concatenation of pixels and scores stays in float: quantized, it found no box at all
    assert row.value is not None and row.value > 0.5, report.table
    assert row.size_bytes is not None and row.size_bytes * 3 < len(package.onnx_model)


def test_tree_ensembles_say_why_each_recipe_does_not_apply(tmp_path: Path) -> None:
    x, y = load_diabetes(return_X_y=True)
    joblib.dump(GradientBoostingRegressor(n_estimators=30, random_state=0).fit(x, y), tmp_path / "gbr.joblib")
    np.savez(tmp_path / "diabetes.npz", X=x, y=y)
    package = package_sklearn("diabetes", tmp_path / "gbr.joblib", tmp_path / "diabetes.npz")
    report = _optimize(package, ["onnx-fp16", "ort-int8-static", "openvino-int8"], tmp_path / "run")
    rows = {r.name: r for r in report.rows}
    assert rows["ort-fp32"].metric == "rmse"
    assert "ONNX-ML operators TreeEnsembleRegressor" in rows["onnx-fp16"].reason
    assert "no Conv, MatMul or Gemm" in rows["ort-int8-static"].reason
    assert "OpenVINO does not read" in rows["openvino-int8"].reason
    assert all(rows[r].status == "skipped" for r in ("onnx-fp16", "ort-int8-static", "openvino-int8"))
