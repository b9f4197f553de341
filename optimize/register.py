"""Package a measured, gated variant as a new version of the parent's registered model."""

from __future__ import annotations

import json
from typing import Any

from numpy.typing import NDArray
from safetensors.torch import save as save_safetensors

from lifecycle.local_version import (
    ARCHITECTURE_FILE,
    CONTRACT_FILE,
    DATA_FILE,
    REFERENCE_FILE,
    WEIGHTS_FILE,
    ModelPackage,
    reference_npz,
)
from lifecycle.names import TAG_METRIC, TAG_TASK
from optimize.gates import GateResult
from optimize.table import Row
from optimize.variant import Parent, Variant


def variant_package(
    parent: Parent,
    variant: Variant,
    row: Row,
    gates: list[GateResult],
    val_outputs: dict[str, NDArray[Any]],
    optimize_run_id: str,
) -> ModelPackage:
    data = parent.data
    files = {
        CONTRACT_FILE: parent.contract.to_json().encode(),
        REFERENCE_FILE: reference_npz(data.val, val_outputs),
        DATA_FILE: data.to_npz(),
    }
    if variant.module is not None and variant.architecture is not None:
        files[WEIGHTS_FILE] = save_safetensors(dict(variant.module.state_dict()))
        files[ARCHITECTURE_FILE] = variant.architecture.to_json().encode()
    role = "student" if variant.recipe.startswith("distill") else "variant"
    tags = {
        "lifecycle.role": role,
        TAG_TASK: parent.contract.task,
        TAG_METRIC: row.metric,
        "lifecycle.recipe": variant.recipe,
        "lifecycle.parent_version": parent.version,
        "lifecycle.parent_model": parent.name,
        "lifecycle.optimize_run_id": optimize_run_id,
        "lifecycle.format": variant.format,
        "lifecycle.runtime": variant.runtime,
        "lifecycle.precision": row.precision,
        "lifecycle.gates": json.dumps(
            {g.gate: {"passed": g.passed, "value": g.value, "threshold": g.threshold} for g in gates}
        ),
        "lifecycle.data_fingerprint": data.fingerprint(),
    }
    if variant.inference_precision:
        tags["lifecycle.inference_precision_hint"] = variant.inference_precision
    if role == "student":
        tags["lifecycle.teacher_version"] = parent.teacher_version or parent.version
    return ModelPackage(
        name=parent.name,
        model_files=variant.read_files(),
        contract=parent.contract,
        files=files,
        format=variant.format,
        tags=tags,
        description=f"{variant.recipe} of {parent.name} v{parent.version}",
    )
