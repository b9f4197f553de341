"""Named-tensor data sets: what a registered version carries to calibrate, evaluate and retrain with.

Items are named input arrays that share a first (batch) dimension, plus optional labels of the
model's task, stored under fixed keys:

- ``y``: class ids (n,) for classification; values (n,) or (n, targets) for regression;
- ``boxes`` (m, 4) xyxy, ``box_classes`` (m,) and ``box_item`` (m,) for detection (``box_item``
  says which item each box belongs to, so that items can hold any number of boxes).
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from lifecycle.data import DataSplits
from lifecycle.tensors import ContractViolationError, batch_size, take

Arrays = dict[str, NDArray[Any]]
BOX_LABELS = ("boxes", "box_classes", "box_item")
LABEL_KEYS = ("y", *BOX_LABELS)
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Samples:
    inputs: Arrays
    labels: Arrays = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = sorted(set(self.labels) - set(LABEL_KEYS))
        if unknown:
            raise ContractViolationError(f"unknown label array(s) {unknown}; labels are {LABEL_KEYS}")
        n = len(self)
        if "y" in self.labels and len(self.labels["y"]) != n:
            raise ContractViolationError(f"labels y hold {len(self.labels['y'])} items, the inputs {n}")
        present = [k for k in BOX_LABELS if k in self.labels]
        if present and len(present) != len(BOX_LABELS):
            raise ContractViolationError(f"box labels need all of {BOX_LABELS}; got {present}")
        if present:
            item = self.labels["box_item"]
            if len({len(self.labels[k]) for k in BOX_LABELS}) != 1 or self.labels["boxes"].shape[1:] != (4,):
                raise ContractViolationError(
                    "boxes (m, 4), box_classes (m,) and box_item (m,) must hold m boxes"
                )
            if len(item) and (item.min() < 0 or item.max() >= n):
                raise ContractViolationError(f"box_item must index the {n} items")

    def __len__(self) -> int:
        return batch_size(self.inputs)

    @property
    def y(self) -> NDArray[Any] | None:
        return self.labels.get("y")

    @property
    def has_boxes(self) -> bool:
        return "boxes" in self.labels

    def take(self, index: NDArray[np.integer] | slice) -> Samples:
        """The chosen items, with their labels (boxes follow their item, renumbered)."""
        idx = np.arange(len(self))[index]
        labels: Arrays = {}
        if "y" in self.labels:
            labels["y"] = self.labels["y"][idx]
        if self.has_boxes:
            position = np.full(len(self), -1, dtype=np.int64)
            position[idx] = np.arange(len(idx))
            keep = position[self.labels["box_item"]] >= 0
            labels["boxes"] = self.labels["boxes"][keep]
            labels["box_classes"] = self.labels["box_classes"][keep]
            labels["box_item"] = position[self.labels["box_item"][keep]]
        return Samples(take(self.inputs, idx), labels)

    def boxes_of(self, item: int) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        mask = self.labels["box_item"] == item
        return self.labels["boxes"][mask], self.labels["box_classes"][mask]


@dataclass(frozen=True)
class TensorData:
    """Train (calibration, retraining), validation (drift reference, escalation) and test (gates)."""

    name: str
    train: Samples
    val: Samples
    test: Samples

    def split(self, name: str) -> Samples:
        return {"train": self.train, "val": self.val, "test": self.test}[name]

    def calibration(self, n: int, seed: int = 0) -> Arrays:
        """A seeded subset of the training inputs, for quantization calibration."""
        rng = np.random.default_rng(seed)
        idx = np.sort(rng.choice(len(self.train), size=min(n, len(self.train)), replace=False))
        return take(self.train.inputs, idx)

    def fingerprint(self) -> str:
        """sha256 over every array (names included), so a run records exactly which data it saw."""
        digest = hashlib.sha256()
        for key, arr in sorted(self.to_arrays().items()):
            digest.update(key.encode())
            digest.update(np.ascontiguousarray(arr).tobytes())
        return digest.hexdigest()

    def to_arrays(self) -> Arrays:
        out: Arrays = {}
        for split in SPLITS:
            samples = self.split(split)
            out.update({f"{split}/in/{k}": v for k, v in samples.inputs.items()})
            out.update({f"{split}/label/{k}": v for k, v in samples.labels.items()})
        return out

    def to_npz(self) -> bytes:
        return npz_bytes(self.to_arrays())

    @classmethod
    def from_arrays(
        cls, name: str, arrays: Mapping[str, NDArray[Any]], input_names: tuple[str, ...]
    ) -> TensorData:
        parts: dict[str, Samples] = {}
        for split in SPLITS:
            inputs = {k: np.asarray(arrays[f"{split}/in/{k}"]) for k in input_names}
            labels = {
                k: np.asarray(arrays[f"{split}/label/{k}"])
                for k in LABEL_KEYS
                if f"{split}/label/{k}" in arrays
            }
            parts[split] = Samples(inputs, labels)
        return cls(name, parts["train"], parts["val"], parts["test"])

    @classmethod
    def from_splits(cls, data: DataSplits, input_name: str) -> TensorData:
        """A tabular ``DataSplits`` (one input, class ids) as named tensors."""
        return cls(
            data.name,
            Samples({input_name: data.x_train}, {"y": data.y_train}),
            Samples({input_name: data.x_val}, {"y": data.y_val}),
            Samples({input_name: data.x_test}, {"y": data.y_test}),
        )

    def to_splits(self, feature_names: tuple[str, ...], class_names: tuple[str, ...]) -> DataSplits:
        """The one-input, labeled view that the tabular stages (training, drift per feature) take.

        :raises ContractViolationError: when the data has several inputs or no class labels."""
        for split in SPLITS:
            samples = self.split(split)
            if len(samples.inputs) != 1 or samples.y is None:
                raise ContractViolationError(
                    f"{self.name}: this stage needs one input and class labels; the data has inputs "
                    f"{sorted(samples.inputs)} and labels {sorted(samples.labels)}"
                )

        def x(s: Samples) -> NDArray[np.float32]:
            return next(iter(s.inputs.values())).astype(np.float32, copy=False)

        def y(s: Samples) -> NDArray[np.int64]:
            assert s.y is not None
            return s.y.astype(np.int64, copy=False)

        return DataSplits(
            self.name, x(self.train), y(self.train), x(self.val), y(self.val), x(self.test), y(self.test),
            feature_names, class_names,
        )  # fmt: skip


def npz_bytes(arrays: Mapping[str, NDArray[Any]]) -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)  # type: ignore[arg-type]
    return buffer.getvalue()


def random_split(
    name: str,
    samples: Samples,
    *,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    seed: int = 0,
    stratify: bool = False,
) -> TensorData:
    """Seeded train / validation / test split; stratified by class id when ``stratify``."""
    if not 0 < val_fraction < 1 or not 0 < test_fraction < 1 or val_fraction + test_fraction >= 1:
        raise ValueError(f"fractions val={val_fraction} test={test_fraction} must be in (0, 1) with sum < 1")
    n = len(samples)
    if n < 3:
        raise ContractViolationError(f"{name}: {n} items cannot make train, validation and test splits")
    rng = np.random.default_rng(seed)
    groups = [np.arange(n)]
    if stratify and samples.y is not None:
        groups = [np.flatnonzero(samples.y == c) for c in np.unique(samples.y)]
    parts: dict[str, list[NDArray[np.intp]]] = {s: [] for s in SPLITS}
    for group in groups:
        idx = rng.permutation(group)
        n_val, n_test = round(len(idx) * val_fraction), round(len(idx) * test_fraction)
        parts["test"].append(idx[:n_test])
        parts["val"].append(idx[n_test : n_test + n_val])
        parts["train"].append(idx[n_test + n_val :])
    chosen = {k: np.sort(np.concatenate(v)) for k, v in parts.items()}
    for split, idx in chosen.items():
        if len(idx) == 0:
            raise ContractViolationError(f"{name}: {n} items leave the {split} split empty; give more data")
    return TensorData(name, *(samples.take(chosen[s]) for s in SPLITS))
