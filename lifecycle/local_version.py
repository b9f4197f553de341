"""What a registered model version carries, and how it is read back from a local folder.

Layout of a version's ``lifecycle/`` artifact folder (beside the MLflow ONNX model):

- ``contract.json``       named input and output tensors, the task and its names
- ``reference.npz``       validation inputs (``in/NAME``), their labels (``label/y`` …) and this
                          version's outputs on them (``out/NAME``): the drift monitor's reference
- ``data.npz``            the train/val/test inputs and labels (``SPLIT/in/NAME``, ``SPLIT/label/y``)
                          used to calibrate, evaluate and retrain
- ``weights.safetensors`` training weights (torch models only; never a pickled module)
- ``architecture.json``   how to rebuild the network before loading the weights
- ``manifest.json``       the artifact's format and the sha256 of each model file

The model files themselves (``model.onnx``, or ``model.xml`` + ``model.bin`` for OpenVINO) sit at
the root of the version's model folder. Their combined sha256 is also the version tag
``lifecycle.artifact_sha256``, which a download is checked against before anything loads.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from lifecycle.contract import ModelContract
from lifecycle.data import DataSplits
from lifecycle.errors import ArtifactIntegrityError
from lifecycle.names import TAG_ARTIFACT_SHA256
from lifecycle.samples import LABEL_KEYS, Samples, TensorData, npz_bytes
from lifecycle.tensors import ContractViolationError

CONTRACT_FILE = "contract.json"
REFERENCE_FILE = "reference.npz"
DATA_FILE = "data.npz"
WEIGHTS_FILE = "weights.safetensors"
ARCHITECTURE_FILE = "architecture.json"
MANIFEST_FILE = "manifest.json"
ONNX_FILE = "model.onnx"
FORMATS = {"onnx": (ONNX_FILE,), "openvino": ("model.xml", "model.bin")}

"""The task metric the version was judged by (accuracy, rmse, cosine, map50, …)."""


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


def reference_npz(samples: Samples, outputs: Mapping[str, NDArray[Any]]) -> bytes:
    """The drift reference: validation inputs, their labels, and this version's outputs on them."""
    return npz_bytes({
        **{f"in/{k}": v for k, v in samples.inputs.items()},
        **{f"label/{k}": v for k, v in samples.labels.items()},
        **{f"out/{k}": v for k, v in outputs.items()},
    })  # fmt: skip


@dataclass(frozen=True)
class ReferenceData:
    samples: Samples
    outputs: dict[str, NDArray[Any]]


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

    def reference_data(self) -> ReferenceData:
        contract = self.contract
        with np.load(self.files_dir / REFERENCE_FILE, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        if "x" in arrays:  # the first layout: one input x, labels y, logits
            labels = {"y": arrays["y"]} if "y" in arrays else {}
            samples = Samples({contract.inputs[0].name: arrays["x"]}, labels)
            return ReferenceData(samples, {contract.primary_output: arrays["logits"]})
        samples = Samples(
            {n: arrays[f"in/{n}"] for n in contract.input_names},
            {k: arrays[f"label/{k}"] for k in LABEL_KEYS if f"label/{k}" in arrays},
        )
        return ReferenceData(samples, {n: arrays[f"out/{n}"] for n in contract.output_names})

    def reference(self) -> Reference:
        """The reference of a one-input classifier with labels (the tabular drift detectors' view).

        :raises ContractViolationError: for other models."""
        self._require_tabular_classifier()
        data = self.reference_data()
        contract = self.contract
        if data.samples.y is None:
            raise ContractViolationError(f"{self.name} v{self.version}: the reference holds no labels")
        x = next(iter(data.samples.inputs.values()))
        logits = data.outputs[contract.primary_output]
        return Reference(
            x=x.astype(np.float32), y=data.samples.y.astype(np.int64), logits=logits.astype(np.float32)
        )

    def tensor_data(self) -> TensorData:
        contract = self.contract
        with np.load(self.files_dir / DATA_FILE, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        if "x_train" in arrays:  # the first layout: x_train … y_test of one input
            splits = DataSplits(
                self.name, arrays["x_train"], arrays["y_train"], arrays["x_val"], arrays["y_val"],
                arrays["x_test"], arrays["y_test"], contract.feature_names, contract.class_names,
            )  # fmt: skip
            return TensorData.from_splits(splits, contract.inputs[0].name)
        return TensorData.from_arrays(self.name, arrays, contract.input_names)

    def splits(self) -> DataSplits:
        """The one-input labeled view of the data (tabular stages).

        :raises ContractViolationError: for models other than tabular classifiers with labels."""
        self._require_tabular_classifier()
        contract = self.contract
        return self.tensor_data().to_splits(contract.feature_names, contract.class_names)

    def _require_tabular_classifier(self) -> None:
        contract = self.contract
        if not contract.is_tabular or contract.task != "classification":
            raise ContractViolationError(
                f"{self.name} v{self.version} is {contract.describe()}; this stage takes tabular "
                "classifiers (one float32 (batch, features) input) only so far"
            )

    @property
    def has_weights(self) -> bool:
        return (self.files_dir / WEIGHTS_FILE).exists() and (self.files_dir / ARCHITECTURE_FILE).exists()
