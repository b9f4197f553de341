"""TensorRT variants of the real pretrained models, built and run on an NVIDIA GPU.

One command on a machine with a GPU: ``make test-gpu`` (installs the tensorrt extra, then runs this
folder). Everywhere else every test is skipped with the reason TensorRT gives (no package, no
cuda-python, or no GPU visible to CUDA)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lifecycle.contract import Detection
from lifecycle.intake.contract import ContractOptions
from lifecycle.optimize.run import optimize
from lifecycle.package import ModelPackage
from lifecycle.registration import package_onnx_file, package_torch
from lifecycle.runtimes.base import RuntimeUnavailableError
from lifecycle.zoo import (
    imagenet_normalise,
    photo_crops,
    ppocr_cls_path,
    sentences,
    tokenize,
    word_crops,
    yolov8n_path,
)
from registry.memory import InMemoryModelRegistry, InMemoryRunTracker


def _tensorrt_unavailable() -> str | None:
    from lifecycle.runtimes import tensorrt

    try:
        tensorrt._import()
    except RuntimeUnavailableError as exc:
        return str(exc)
    return None


REASON = _tensorrt_unavailable()
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"TensorRT cannot run here: {REASON}")


def _ppocr(tmp: Path) -> ModelPackage:
    x, y = word_crops(96, seed=0)
    np.savez(tmp / "d.npz", x=x, y=y)
    return package_onnx_file(
        "ppocr", ppocr_cls_path(), tmp / "d.npz", ContractOptions(shapes={"x": ("batch", 3, 48, 192)})
    )


def _effnet(tmp: Path) -> ModelPackage:
    np.savez(tmp / "d.npz", inputs=imagenet_normalise(photo_crops(64, seed=0)))
    return package_torch(
        "effnet", "lifecycle.zoo:efficientnet_lite0", tmp / "d.npz", output_names=("logits",)
    )


def _yolo(tmp: Path) -> ModelPackage:
    np.savez(tmp / "d.npz", images=photo_crops(48, seed=0, side=320))
    options = ContractOptions(
        task="detection", detection=Detection(score_threshold=0.05),
        shapes={"images": ("batch", 3, 320, 320), "output0": ("batch", 22, "anchors")},
    )  # fmt: skip
    return package_onnx_file("yolo", yolov8n_path(), tmp / "d.npz", options)


def _minilm(tmp: Path) -> ModelPackage:
    np.savez(tmp / "d.npz", **tokenize(sentences(64, seed=0), length=128))
    options = ContractOptions(task="embedding", shapes={"token_embeddings": ("batch", "sequence", 384)})
    return package_torch(
        "minilm", "lifecycle.zoo:minilm", tmp / "d.npz", options, output_names=("token_embeddings",)
    )


@pytest.mark.parametrize("make", [_ppocr, _effnet, _yolo, _minilm], ids=["ppocr", "effnet", "yolo", "minilm"])
def test_tensorrt_variants_build_run_and_are_judged(make: object, tmp_path: Path) -> None:
    package = make(tmp_path)  # type: ignore[operator]
    registry, tracker = InMemoryModelRegistry(), InMemoryRunTracker()
    registry.register(package)
    report = optimize(
        registry, tracker, package.name, "1", tmp_path / "run", recipes=["tensorrt-fp16", "tensorrt-int8"],
        rounds=50, batch_rounds=5,
    )  # fmt: skip
    for name in ("tensorrt-fp16", "tensorrt-int8"):
        row = next(r for r in report.rows if r.name == name)
        assert row.status in ("registered", "rejected"), report.table  # built, run and judged
        assert row.runtime == "tensorrt" and row.value is not None
