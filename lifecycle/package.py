"""What a registered model version carries, and how it is read back from a local folder.

Layout of a version's ``lifecycle/`` artifact folder (beside the MLflow ONNX model):

- ``contract.json``       input/output spec, feature and class names
- ``reference.npz``       validation inputs ``x``, labels ``y`` and this version's ``logits`` on them
                          (the drift monitor's reference)
- ``data.npz``            the train/val/test arrays used to calibrate, evaluate and retrain
- ``weights.safetensors`` training weights (torch models only; never a pickled module)
- ``architecture.json``   how to rebuild the network before loading the weights
- ``manifest.json``       the artifact's format and the sha256 of each model file

The model files themselves (``model.onnx``, or ``model.xml`` + ``model.bin`` for OpenVINO) sit at
the root of the version's model folder. Their combined sha256 is also the version tag
``lifecycle.artifact_sha256``, which a download is checked against before anything loads.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from lifecycle.contract import ModelContract
from lifecycle.data import DataSplits
from lifecycle.errors import ArtifactIntegrityError

CONTRACT_FILE = "contract.json"
REFERENCE_FILE = "reference.npz"
DATA_FILE = "data.npz"
WEIGHTS_FILE = "weights.safetensors"
ARCHITECTURE_FILE = "architecture.json"
MANIFEST_FILE = "manifest.json"
ONNX_FILE = "model.onnx"
FORMATS = {"onnx": (ONNX_FILE,), "openvino": ("model.xml", "model.bin")}

TAG_ARTIFACT_SHA256 = "lifecycle.artifact_sha256"
TAG_RUN_ID = "lifecycle.run_id"


def artifact_sha256(model_files: dict[str, bytes]) -> str:
    """sha256 of a single model file, or of the sorted ``name:sha256`` lines of several."""
    digests = {name: hashlib.sha256(data).hexdigest() for name, data in model_files.items()}
    if len(digests) == 1:
        return next(iter(digests.values()))
    lines = "".join(f"{name}:{digest}\n" for name, digest in sorted(digests.items()))
    return hashlib.sha256(lines.encode()).hexdigest()


@dataclass(frozen=True)
class ModelPackage:
    """Everything needed to register one model version."""

    name: str
    model_files: dict[str, bytes]
    """The runtime artifact: ``{"model.onnx": ...}`` or ``{"model.xml": ..., "model.bin": ...}``."""
    contract: ModelContract
    files: dict[str, bytes]
    """Our files (contract, reference, data, weights, manifest), stored under ``extra_files/``."""
    format: str = "onnx"
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    description: str = ""

    def __post_init__(self) -> None:
        expected = FORMATS.get(self.format)
        if expected is None:
            raise ValueError(f"format {self.format!r} is not one of {sorted(FORMATS)}")
        if set(self.model_files) != set(expected):
            raise ValueError(f"a {self.format} package holds {expected}, got {sorted(self.model_files)}")
        # Own copies, with the manifest and checksum tag derived here and nowhere else: a package
        # made by dataclasses.replace() never shares (or rewrites) another package's dicts.
        object.__setattr__(self, "model_files", dict(self.model_files))
        object.__setattr__(self, "files", {**self.files, MANIFEST_FILE: self.manifest()})
        object.__setattr__(self, "tags", {**self.tags, TAG_ARTIFACT_SHA256: self.artifact_sha256})
        object.__setattr__(self, "metrics", dict(self.metrics))
        object.__setattr__(self, "params", dict(self.params))

    @property
    def onnx_model(self) -> bytes:
        if self.format != "onnx":
            raise ValueError(f"{self.name} is a {self.format} package, not ONNX")
        return self.model_files[ONNX_FILE]

    @property
    def artifact_sha256(self) -> str:
        return artifact_sha256(self.model_files)

    def manifest(self) -> bytes:
        digests = {n: hashlib.sha256(d).hexdigest() for n, d in sorted(self.model_files.items())}
        return json.dumps({"format": self.format, "files": digests}, indent=2).encode()


def npz_bytes(**arrays: NDArray[np.generic]) -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)  # type: ignore[arg-type]
    return buffer.getvalue()


def splits_npz(data: DataSplits) -> bytes:
    return npz_bytes(
        x_train=data.x_train,
        y_train=data.y_train,
        x_val=data.x_val,
        y_val=data.y_val,
        x_test=data.x_test,
        y_test=data.y_test,
    )


@dataclass(frozen=True)
class Reference:
    x: NDArray[np.float32]
    y: NDArray[np.int64]
    logits: NDArray[np.float32]


@dataclass(frozen=True)
class LocalVersion:
    """A downloaded model version: model files at ``model_dir``, our files in ``files_dir``."""

    name: str
    version: str
    model_dir: Path
    files_dir: Path

    @property
    def format(self) -> str:
        manifest = self.files_dir / MANIFEST_FILE
        return str(json.loads(manifest.read_text())["format"]) if manifest.exists() else "onnx"

    @property
    def model_paths(self) -> dict[str, Path]:
        return {name: self.model_dir / name for name in FORMATS[self.format]}

    @property
    def onnx_path(self) -> Path:
        return self.model_dir / ONNX_FILE

    def verify(self, expected_sha256: str | None) -> None:
        """:raises ArtifactIntegrityError: when the model files are not the ones registered."""
        if not expected_sha256:
            raise ArtifactIntegrityError(
                f"{self.name} v{self.version} has no {TAG_ARTIFACT_SHA256} tag; refusing an unverifiable artifact"
            )
        paths = self.model_paths
        missing = [n for n, p in paths.items() if not p.exists()]
        if missing:
            raise ArtifactIntegrityError(f"{self.name} v{self.version}: model file(s) {missing} missing")
        actual = artifact_sha256({n: p.read_bytes() for n, p in paths.items()})
        if actual != expected_sha256:
            raise ArtifactIntegrityError(
                f"{self.name} v{self.version}: model files have sha256 {actual[:12]}…, "
                f"registration recorded {expected_sha256[:12]}…"
            )

    @property
    def contract(self) -> ModelContract:
        return ModelContract.from_json((self.files_dir / CONTRACT_FILE).read_text())

    def reference(self) -> Reference:
        with np.load(self.files_dir / REFERENCE_FILE) as npz:
            return Reference(x=npz["x"], y=npz["y"], logits=npz["logits"])

    def splits(self) -> DataSplits:
        contract = self.contract
        with np.load(self.files_dir / DATA_FILE) as npz:
            return DataSplits(
                name=self.name,
                x_train=npz["x_train"],
                y_train=npz["y_train"],
                x_val=npz["x_val"],
                y_val=npz["y_val"],
                x_test=npz["x_test"],
                y_test=npz["y_test"],
                feature_names=contract.feature_names,
                class_names=contract.class_names,
            )

    @property
    def has_weights(self) -> bool:
        return (self.files_dir / WEIGHTS_FILE).exists() and (self.files_dir / ARCHITECTURE_FILE).exists()
