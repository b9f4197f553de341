"""Turn a trained torch module or an ONNX model into a ``ModelPackage`` ready to register."""

from __future__ import annotations

import numpy as np
import onnx
from numpy.typing import NDArray
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors
from torch import nn

from lifecycle.contract import ModelContract
from lifecycle.data import DataSplits
from lifecycle.errors import ExportError
from lifecycle.export import export_onnx, forward_input_name, verify_export
from lifecycle.nets import Architecture, parameter_count
from lifecycle.package import (
    ARCHITECTURE_FILE,
    CONTRACT_FILE,
    DATA_FILE,
    ONNX_FILE,
    REFERENCE_FILE,
    WEIGHTS_FILE,
    LocalVersion,
    ModelPackage,
    npz_bytes,
    splits_npz,
)
from lifecycle.runtimes.base import run_batched
from lifecycle.runtimes.onnxruntime import OrtRunner
from lifecycle.training import accuracy


def package_torch_model(
    name: str,
    module: nn.Module,
    data: DataSplits,
    *,
    architecture: Architecture | None = None,
    metrics: dict[str, float] | None = None,
    params: dict[str, str] | None = None,
    tags: dict[str, str] | None = None,
    description: str = "",
) -> ModelPackage:
    """Export to ONNX (checked against torch), measure it with ONNX Runtime, and bundle the weights."""
    module.eval()
    onnx_model = export_onnx(module, data.x_val[:2])
    max_diff = verify_export(module, onnx_model, data.x_val[:16])
    contract = ModelContract.for_classifier(
        data.feature_names, data.class_names, input_name=forward_input_name(module)
    )
    files = {WEIGHTS_FILE: save_safetensors(dict(module.state_dict()))}
    if architecture is not None:
        files[ARCHITECTURE_FILE] = architecture.to_json().encode()
    measured = {"onnx_max_abs_diff": max_diff, "parameter_count": float(parameter_count(module))}
    return package_onnx_model(
        name,
        onnx_model,
        data,
        contract=contract,
        metrics={**measured, **(metrics or {})},
        params=params,
        tags=tags,
        description=description,
        extra_files=files,
    )


def package_onnx_model(
    name: str,
    onnx_model: bytes,
    data: DataSplits,
    *,
    contract: ModelContract | None = None,
    metrics: dict[str, float] | None = None,
    params: dict[str, str] | None = None,
    tags: dict[str, str] | None = None,
    description: str = "",
    extra_files: dict[str, bytes] | None = None,
) -> ModelPackage:
    """Package any single-input classifier ONNX model: accuracy and the drift reference come from
    ONNX Runtime, i.e. from exactly what serving will execute."""
    try:
        onnx.checker.check_model(onnx.load_model_from_string(onnx_model))
    except Exception as exc:
        raise ExportError(f"{name}: not a valid ONNX model: {exc}") from exc
    runner = OrtRunner(onnx_model)
    if contract is None:
        contract = ModelContract.for_classifier(
            data.feature_names, data.class_names, input_name=runner.input_name
        )
    val_logits = run_batched(runner, data.x_val)
    logits_test = run_batched(runner, data.x_test)
    _check_outputs(name, contract, logits_test)
    measured = {
        "test_accuracy": accuracy(logits_test, data.y_test),
        "val_accuracy": accuracy(val_logits, data.y_val),
        "onnx_size_bytes": float(len(onnx_model)),
    }
    return ModelPackage(
        name=name,
        model_files={ONNX_FILE: onnx_model},
        contract=contract,
        files={
            CONTRACT_FILE: contract.to_json().encode(),
            REFERENCE_FILE: npz_bytes(x=data.x_val, y=data.y_val, logits=val_logits),
            DATA_FILE: splits_npz(data),
            **(extra_files or {}),
        },
        metrics={**measured, **(metrics or {})},
        params={"dataset": data.name, "data_fingerprint": data.fingerprint(), **(params or {})},
        tags=dict(tags or {}),
        description=description,
    )


def _check_outputs(name: str, contract: ModelContract, logits: NDArray[np.float32]) -> None:
    if logits.ndim != 2 or logits.shape[1] != contract.n_classes:
        raise ExportError(
            f"{name}: model outputs shape {logits.shape}, the contract expects (n, {contract.n_classes})"
        )
    if not np.isfinite(logits).all():
        raise ExportError(f"{name}: model outputs NaN or infinity on the test split")


def load_torch_model(local: LocalVersion) -> nn.Module:
    """Rebuild a registered torch network from its architecture and safetensors weights (no unpickling)."""
    if not local.has_weights:
        raise ExportError(f"{local.name} v{local.version} carries no torch weights (ONNX-only version)")
    architecture = Architecture.from_json((local.files_dir / ARCHITECTURE_FILE).read_text())
    module = architecture.build()
    module.load_state_dict(load_safetensors((local.files_dir / WEIGHTS_FILE).read_bytes()))
    return module.eval()


__all__ = ["load_torch_model", "package_onnx_model", "package_torch_model"]
