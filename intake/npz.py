"""A user's NPZ: arrays named after the model's inputs, labels optional.

Keys:

- one array per input, named as the input (``x``; ``input_ids`` and ``attention_mask``; …);
- labels, optional: ``y`` (or ``labels``) — class ids or regression targets; ``boxes`` (m, 4) xyxy,
  ``box_classes`` (m,) and ``box_item`` (m,) for detection;
- names, optional: ``class_names``, ``target_names``, ``feature_names`` (string arrays);
- for a one-input model, ``x`` stands for its input whatever its name, and the six arrays
  ``x_train`` … ``y_test`` give the split ready-made.

Loaded with ``allow_pickle=False``: an NPZ that holds Python objects is refused, never unpickled.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from lifecycle.contract import ModelContract
from lifecycle.samples import BOX_LABELS, Samples, TensorData, random_split
from lifecycle.tensors import ContractViolationError

NAME_KEYS = ("class_names", "target_names", "feature_names")
SPLIT_KEYS = ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")


@dataclass(frozen=True)
class NpzContent:
    path: str
    arrays: dict[str, NDArray[Any]]
    names: dict[str, tuple[str, ...]]

    def to_data(self, name: str, contract: ModelContract, *, seed: int = 0) -> TensorData:
        """Named inputs and labels, split seeded (stratified by class for a classifier).

        :raises ContractViolationError: naming the arrays that are missing or unknown."""
        arrays = dict(self.arrays)
        single = contract.inputs[0].name if len(contract.inputs) == 1 else None
        if single is not None and set(SPLIT_KEYS) <= set(arrays):
            parts = [
                Samples({single: arrays.pop(f"x_{s}")}, {"y": arrays.pop(f"y_{s}")})
                for s in ("train", "val", "test")
            ]
            self._no_leftovers(arrays, contract)
            return TensorData(name, *parts)
        if single is not None and single not in arrays and "x" in arrays:
            arrays[single] = arrays.pop("x")
        if "labels" in arrays and "y" not in arrays:
            arrays["y"] = arrays.pop("labels")
        inputs = {n: arrays.pop(n) for n in contract.input_names if n in arrays}
        labels = {k: arrays.pop(k) for k in ("y", *BOX_LABELS) if k in arrays}
        missing = [n for n in contract.input_names if n not in inputs]
        if missing:
            raise ContractViolationError(
                f"{self.path} has no array for input(s) {missing}; it holds {sorted(self.arrays)}. "
                f"Name one array after each input: {', '.join(i.describe() for i in contract.inputs)}"
            )
        self._no_leftovers(arrays, contract)
        samples = Samples(inputs, labels)
        stratify = contract.task == "classification" and samples.y is not None
        return random_split(name, samples, seed=seed, stratify=stratify)

    def _no_leftovers(self, arrays: dict[str, NDArray[Any]], contract: ModelContract) -> None:
        if arrays:
            raise ContractViolationError(
                f"{self.path} holds array(s) {sorted(arrays)} that are neither inputs "
                f"{list(contract.input_names)} nor labels (y, {', '.join(BOX_LABELS)})"
            )


def read_npz(path: str | Path) -> NpzContent:
    """:raises ContractViolationError: when the file is not an NPZ of plain arrays."""
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise ContractViolationError(f"{path} is a single array, not an NPZ of named arrays")
        with loaded as npz:
            arrays = {k: npz[k] for k in npz.files}
    except ValueError as exc:
        if isinstance(exc, ContractViolationError):
            raise
        raise ContractViolationError(f"{path} is not an NPZ of plain arrays: {exc}") from exc
    except (OSError, EOFError) as exc:
        raise ContractViolationError(f"{path} is not an NPZ file: {exc}") from exc
    if not arrays:
        raise ContractViolationError(f"{path} holds no arrays")
    names = {k: tuple(str(v) for v in arrays.pop(k)) for k in NAME_KEYS if k in arrays}
    return NpzContent(str(path), arrays, names)
