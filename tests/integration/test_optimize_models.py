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

from lifecycle.contract import Detection
from lifecycle.intake.contract import ContractOptions
from lifecycle.optimize.run import OptimizeReport, optimize
from lifecycle.package import ModelPackage
from lifecycle.registration import package_onnx_file, package_sklearn, package_torch
from lifecycle.zoo import photo_crops, ppocr_cls_path, sentences, tokenize, word_crops, yolov8n_path
from registry.memory import InMemoryModelRegistry, InMemoryRunTracker

pytestmark = pytest.mark.slow


def _optimize(package: ModelPackage, recipes: list[str], workdir: Path) -> OptimizeReport:
    registry, tracker = InMemoryModelRegistry(), InMemoryRunTracker()
    registry.register(package)
    return optimize(registry, tracker, package.name, "1", workdir, recipes=recipes, rounds=40, batch_rounds=3)


def test_orientation_classifier_int8_is_slower_and_rejected_in_the_open(tmp_path: Path) -> None:
    x, y = word_crops(120, seed=0)
    np.savez(tmp_path / "crops.npz", x=x, y=y)
    package = package_onnx_file(
        "ppocr",
        ppocr_cls_path(),
        tmp_path / "crops.npz",
        ContractOptions(shapes={"x": ("batch", 3, 48, 192)}),
    )
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
    np.savez(tmp_path / "text.npz", **tokenize(sentences(48, seed=1), length=128))
    options = ContractOptions(
        task="embedding", shapes={"token_embeddings": ("batch", "sequence", 384)},
        pad_values={"input_ids": 0, "attention_mask": 0, "token_type_ids": 0},
    )  # fmt: skip
    package = package_torch(
        "minilm", "lifecycle.zoo:minilm", tmp_path / "text.npz", options, output_names=("token_embeddings",)
    )
    report = _optimize(package, ["ort-int8-dynamic"], tmp_path / "run")
    row = next(r for r in report.rows if r.name == "ort-int8-dynamic")
    assert row.metric == "cosine" and row.value is not None and row.value >= 0.99, report.table
    assert row.status == "registered", report.table
    assert row.precision == "int8" and row.batch == 8


def test_yolov8n_static_int8_keeps_its_boxes(tmp_path: Path) -> None:
    np.savez(tmp_path / "photos.npz", images=photo_crops(40, seed=0, side=320))
    options = ContractOptions(
        task="detection", detection=Detection(score_threshold=0.05),
        shapes={"images": ("batch", 3, 320, 320), "output0": ("batch", 22, "anchors")},
    )  # fmt: skip
    package = package_onnx_file("yolo", yolov8n_path(), tmp_path / "photos.npz", options)
    report = _optimize(package, ["ort-int8-static"], tmp_path / "run")
    row = next(r for r in report.rows if r.name == "ort-int8-static")
    assert row.metric == "box_agreement" and row.value is not None and row.value >= 0.9, report.table
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
