"""The real pretrained models of ``intake.zoo`` as packages ready to register, each with data
made in code: what the tests, the GPU tests and the benchmarks register and optimize."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from intake.graph_contract import ContractOptions
from intake.register import package_onnx_file, package_torch
from intake.zoo import (
    imagenet_normalise,
    photo_crops,
    ppocr_cls_path,
    sentences,
    tokenize,
    word_crops,
    yolov8n_path,
)
from lifecycle.local_version import ModelPackage
from lifecycle.samples import npz_bytes

TOKEN_PADS = {"input_ids": 0.0, "attention_mask": 0.0, "token_type_ids": 0.0}


def ppocr_cls(workdir: Path, n: int = 240, seed: int = 0) -> ModelPackage:
    """PP-OCR's orientation classifier on rendered words, half turned by 180° (labeled)."""
    x, y = word_crops(n, seed=seed)
    np.savez(workdir / "ppocr.npz", x=x, y=y)
    options = ContractOptions(shapes={"x": ("batch", 3, 48, 192)}, class_names=("0", "180"))
    return package_onnx_file("ppocr-cls", ppocr_cls_path(), workdir / "ppocr.npz", options, seed=seed)


def efficientnet_lite0(workdir: Path, n: int = 200, seed: int = 0) -> ModelPackage:
    """EfficientNet-Lite0 (ImageNet) on crops of real photographs (unlabeled: fidelity to FP32)."""
    np.savez(workdir / "effnet.npz", inputs=imagenet_normalise(photo_crops(n, seed=seed)))
    return package_torch(
        "efficientnet-lite0", "intake.zoo:efficientnet_lite0", workdir / "effnet.npz", output_names=("logits",),
        seed=seed,
    )  # fmt: skip


def yolov8n(workdir: Path, n: int = 240, seed: int = 0) -> ModelPackage:
    """NudeNet's YOLOv8n on photograph crops (its classes are about people: the astronaut's and the
    cameraman's faces give it boxes to find); the YOLOv8 decoder at its usual 0.25 score."""
    np.savez(workdir / "yolo.npz", images=photo_crops(n, seed=seed, side=320))
    options = ContractOptions(
        task="detection", shapes={"images": ("batch", 3, 320, 320), "output0": ("batch", 22, "anchors")}
    )
    return package_onnx_file("yolov8n", yolov8n_path(), workdir / "yolo.npz", options, seed=seed)


def minilm(workdir: Path, n: int = 200, seed: int = 0, *, length: int = 128) -> ModelPackage:
    """all-MiniLM-L6-v2 on generated sentences padded to ``length`` tokens, mean-pooled."""
    (workdir / "minilm.npz").write_bytes(npz_bytes(tokenize(sentences(n, seed=seed), length=length)))
    options = ContractOptions(
        task="embedding", shapes={"token_embeddings": ("batch", "sequence", 384)}, pad_values=TOKEN_PADS
    )
    return package_torch(
        "minilm",
        "intake.zoo:minilm",
        workdir / "minilm.npz",
        options,
        output_names=("token_embeddings",),
        seed=seed,
    )


PRETRAINED: dict[str, Callable[..., ModelPackage]] = {
    "ppocr-cls": ppocr_cls, "efficientnet-lite0": efficientnet_lite0, "yolov8n": yolov8n, "minilm": minilm,
}  # fmt: skip
