"""Real pretrained models that no one here wrote, registered through every way in, against a real
MLflow server: the stored contract is the graph's, the metric is the task's, and what does not fit
is refused with nothing left in the registry."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import joblib
import mlflow
import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.ensemble import GradientBoostingClassifier, GradientBoostingRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from typer.testing import CliRunner

from intake.zoo import natural_images, ppocr_cls_path, word_crops, yolov8n_path
from lifecycle.contract import ModelContract
from lifecycle.runtimes.load import load_version
from lifecycle.runtimes.onnxruntime import OrtRunner
from registry.mlflow import MlflowModelRegistry
from tests.integration.conftest import run_cli

runner = CliRunner()


@pytest.fixture(scope="module")
def crops(tmp_path_factory: pytest.TempPathFactory) -> Path:
    x, y = word_crops(160, seed=0)
    path = tmp_path_factory.mktemp("ppocr") / "crops.npz"
    np.savez(path, x=x, y=y, class_names=np.array(["0", "180"]))
    return path


_invoke = run_cli


def test_the_orientation_classifier_keeps_its_image_contract(
    env: str, crops: Path, tmp_path: Path, stored_contract: Callable[[str], ModelContract]
) -> None:
    name = f"ppocr-{uuid.uuid4().hex[:6]}"
    code, out = _invoke(
        "register", name, "--onnx", str(ppocr_cls_path()), "--data", str(crops), "--shape", "x=batch,3,48,192"
    )
    assert code == 0, out
    assert f"registered {name} v1: test accuracy" in out
    assert "x float32 (batch, 3, 48, 192)" in out and "(probabilities)" in out
    contract = stored_contract(name)
    assert contract.inputs[0].shape == ("batch", 3, 48, 192)
    assert contract.scores == "probabilities" and contract.class_names == ("0", "180")
    version = MlflowModelRegistry(env).get_version(name, "1")
    assert version.metrics["test_accuracy"] >= 0.95
    assert (
        version.tags["lifecycle.task"] == "classification" and version.tags["lifecycle.metric"] == "accuracy"
    )
    mlflow.set_tracking_uri(env)
    signature = mlflow.models.get_model_info(f"models:/{name}/1").signature
    assert signature is not None
    inputs = signature.inputs.to_dict()
    assert inputs == [
        {"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": (-1, 3, 48, 192)}, "name": "x"}
    ]


@pytest.mark.parametrize(
    ("arrays", "extra", "message"),
    [
        ({"pixels": np.zeros((6, 3, 48, 192), np.float32)}, (), "has no array for input(s) ['x']"),
        ({"x": np.zeros((6, 3), np.float32)}, (), "input tensor 'x' has shape (4, 3) (rank 2)"),
        ({"x": np.zeros((6, 3, 48, 192), np.float64)}, (), "'x' has dtype float64"),
        (
            {"x": np.zeros((6, 3, 32, 192), np.float32)},
            ("--shape", "x=batch,3,48,192"),
            "dimension 2 must be 48",
        ),
        (
            {"x": np.zeros((6, 3, 48, 192), np.float32)},
            ("--shape", "x=batch,4,48,192"),
            "fixed at 3 in the graph",
        ),
        (
            {"x": np.zeros((6, 3, 48, 192), np.float32), "y": np.full(6, 7)},
            (),
            "labels y range over [7, 7]; the model has 2 classes",
        ),
        (
            {"x": np.zeros((6, 3, 48, 192), np.float32)},
            ("--task", "embedding", "--output", "logits"),
            "primary output 'logits' is not an output of the graph",
        ),
    ],
)
def test_what_does_not_fit_is_refused_and_nothing_is_stored(
    env: str, tmp_path: Path, arrays: dict[str, np.ndarray], extra: tuple[str, ...], message: str
) -> None:
    name = f"bad-{uuid.uuid4().hex[:6]}"
    data = tmp_path / "data.npz"
    np.savez(data, **arrays)
    code, out = _invoke("register", name, "--onnx", str(ppocr_cls_path()), "--data", str(data), *extra)
    assert code == 1, out
    assert message in out
    assert name not in MlflowModelRegistry(env).list_models()


def test_scikit_learn_classifier_and_regressor(
    env: str, tmp_path: Path, stored_contract: Callable[[str], ModelContract]
) -> None:
    x, y = load_breast_cancer(return_X_y=True)
    clf = make_pipeline(StandardScaler(), GradientBoostingClassifier(n_estimators=40, random_state=0)).fit(
        x[:300], y[:300]
    )
    joblib.dump(clf, tmp_path / "clf.joblib")
    np.savez(tmp_path / "bc.npz", X=x, y=y)
    name = f"bc-{uuid.uuid4().hex[:6]}"
    code, out = _invoke(
        "register", name, "--sklearn", str(tmp_path / "clf.joblib"), "--data", str(tmp_path / "bc.npz"),
        "--classes", "a,b,c",
    )  # fmt: skip
    assert code == 1 and "--classes names 3 classes; the estimator has 2: 0, 1" in out, out
    code, out = _invoke(
        "register", name, "--sklearn", str(tmp_path / "clf.joblib"), "--data", str(tmp_path / "bc.npz"),
        "--classes", "malignant,benign",
    )  # fmt: skip
    assert code == 0, out
    assert "test accuracy" in out and "export max abs difference" in out
    version = MlflowModelRegistry(env).get_version(name, "1")
    assert version.metrics["test_accuracy"] >= 0.9
    assert version.metrics["export_max_abs_diff"] < 1e-4
    contract = stored_contract(name)
    assert contract.primary_output == "probabilities" and contract.output_names == ("label", "probabilities")
    assert contract.class_names == ("malignant", "benign")

    # a student distilled from it answers with its interface, and every runner reads class logits
    code, out = _invoke(
        "optimize", name, "-v", "1", "--recipes", "distill", "--max-accuracy-drop", "50", "--rounds", "20"
    )
    assert (
        code == 0 and "1 variants registered" in out and "│ distill │ onnxruntime │ fp32 │ registered" in out
    ), out
    student = MlflowModelRegistry(env).download(name, "2", tmp_path / "student")
    answers = OrtRunner(student.onnx_path.read_bytes()).run_named({"X": x[:50].astype(np.float32)})
    assert set(answers) == {"label", "probabilities"}
    assert np.array_equal(answers["label"], answers["probabilities"].argmax(axis=1))
    teacher = MlflowModelRegistry(env).download(name, "1", tmp_path / "teacher")
    logits = load_version(teacher, {}).run(x[:50].astype(np.float32))
    probabilities = clf.predict_proba(x[:50])
    softmax = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    assert np.allclose(softmax, probabilities, atol=1e-4)

    xd, yd = load_diabetes(return_X_y=True)
    reg = GradientBoostingRegressor(n_estimators=40, random_state=0).fit(xd[:300], yd[:300])
    joblib.dump(reg, tmp_path / "reg.joblib")
    np.savez(tmp_path / "diabetes.npz", X=xd, y=yd)
    name = f"diabetes-{uuid.uuid4().hex[:6]}"
    code, out = _invoke(
        "register", name, "--sklearn", str(tmp_path / "reg.joblib"), "--data", str(tmp_path / "diabetes.npz")
    )
    assert code == 0, out
    assert "test rmse" in out
    version = MlflowModelRegistry(env).get_version(name, "1")
    rmse, spread = version.metrics["test_rmse"], float(np.std(yd))
    assert 0 < rmse < spread  # better than predicting the mean
    assert version.tags["lifecycle.task"] == "regression"
    assert version.tags["lifecycle.metric"] == "rmse"


def test_the_yolov8n_detector_registers_with_its_decoder(
    env: str, tmp_path: Path, stored_contract: Callable[[str], ModelContract]
) -> None:
    images = natural_images(24, seed=1, side=320)
    images = (images - images.min()) / (images.max() - images.min())  # the detector takes [0, 1]
    data = tmp_path / "images.npz"
    np.savez(data, images=images.astype(np.float32))
    name = f"yolo-{uuid.uuid4().hex[:6]}"
    code, out = _invoke(
        "register", name, "--onnx", str(yolov8n_path()), "--data", str(data), "--task", "detection",
        "--shape", "images=batch,3,320,320", "--shape", "output0=batch,22,anchors",
    )  # fmt: skip
    assert code == 0, out
    assert f"registered {name} v1: test box_agreement 1.0000" in out
    contract = stored_contract(name)
    assert contract.task == "detection" and contract.detection is not None
    assert contract.detection.decoder == "yolov8" and contract.n_classes == 18
    assert contract.output.shape == ("batch", 22, "anchors")
