"""Does this data fit this contract? Inputs by name, dtype and shape; labels by the task's kind.

A registration runs every check before anything is stored: a mismatch names the split, the
tensor and what was expected."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from lifecycle.contract import ModelContract
from lifecycle.samples import SPLITS, Samples, TensorData
from lifecycle.tensors import ContractViolationError


def check_data(contract: ModelContract, data: TensorData) -> None:
    """:raises ContractViolationError: naming the split and what does not fit."""
    for split in SPLITS:
        samples = data.split(split)
        try:
            contract.validate_inputs(samples.inputs)
            check_labels(contract, samples)
        except ContractViolationError as exc:
            raise ContractViolationError(f"{split} split: {exc}") from exc


def check_labels(contract: ModelContract, samples: Samples) -> None:
    """Labels are optional; those given must be of the task's kind."""
    if samples.has_boxes:
        if contract.task != "detection":
            raise ContractViolationError(f"box labels were given for a {contract.task} model")
        _check_classes("box_classes", samples.labels["box_classes"], contract.n_classes)
        if not np.isfinite(samples.labels["boxes"]).all():
            raise ContractViolationError("box labels hold NaN or infinity")
    y = samples.y
    if y is None:
        return
    if contract.task == "classification":
        _check_classes("y", y, contract.n_classes)
    elif contract.task == "regression":
        targets = len(contract.target_names)
        if y.dtype.kind != "f" or not np.isfinite(y).all():
            raise ContractViolationError(f"regression labels y must be finite floats; got dtype {y.dtype}")
        if not (y.ndim == 1 and targets == 1) and y.shape[1:] != (targets,):
            raise ContractViolationError(
                f"regression labels y have shape {y.shape}; expected (n,{' ' + str(targets) if targets > 1 else ''})"
            )
    else:
        raise ContractViolationError(f"labels y were given for a {contract.task} model, which takes none")


def _check_classes(name: str, y: NDArray[Any], n_classes: int) -> None:
    if y.dtype.kind not in "iu" or y.ndim != 1:
        raise ContractViolationError(
            f"labels {name} must be class ids (n,) of an integer dtype; got {y.dtype} {y.shape}"
        )
    if len(y) and (y.min() < 0 or y.max() >= n_classes):
        raise ContractViolationError(
            f"labels {name} range over [{y.min()}, {y.max()}]; the model has {n_classes} classes (0…{n_classes - 1})"
        )


def check_outputs(contract: ModelContract, outputs: dict[str, NDArray[Any]], what: str) -> None:
    """The graph's answers must be what the contract declares, and finite."""
    try:
        contract.validate_outputs(outputs)
    except ContractViolationError as exc:
        raise ContractViolationError(f"{what}: {exc}") from exc
    for name, arr in outputs.items():
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            raise ContractViolationError(f"{what}: output {name!r} holds NaN or infinity")
