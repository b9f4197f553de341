"""Turn a trained torch module or an ONNX model into a ``ModelPackage`` ready to register."""

from __future__ import annotations

from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors
from torch import nn

from lifecycle.conformance import check_data, check_outputs
from lifecycle.contract import ModelContract
from lifecycle.data import DataSplits
from lifecycle.errors import ExportError
from lifecycle.evaluate import evaluate
from lifecycle.export import export_onnx, forward_input_name, verify_export
from lifecycle.graph import check_against_graph, graph_tensors, load_onnx
from lifecycle.local_version import (
    ARCHITECTURE_FILE,
    CONTRACT_FILE,
    DATA_FILE,
    ONNX_FILE,
    REFERENCE_FILE,
    WEIGHTS_FILE,
    LocalVersion,
    ModelPackage,
    reference_npz,
)
from lifecycle.names import TAG_METRIC, TAG_TASK
from lifecycle.nets import Architecture, parameter_count
from lifecycle.runtimes.base import run_named_batched
from lifecycle.runtimes.onnxruntime import OrtRunner
from lifecycle.samples import TensorData
from lifecycle.tensors import ContractViolationError


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
    data: TensorData | DataSplits,
    *,
    contract: ModelContract | None = None,
    metrics: dict[str, float] | None = None,
    params: dict[str, str] | None = None,
    tags: dict[str, str] | None = None,
    description: str = "",
    extra_files: dict[str, bytes] | None = None,
) -> ModelPackage:
    """Package any ONNX model with its contract and data. Nothing is packaged that does not fit:
    the contract is checked against the graph's own tensors, the data against the contract, and the
    graph's answers on the data against the contract's outputs. The task metric and the drift
    reference come from ONNX Runtime, i.e. from exactly what serving will execute.

    ``contract`` defaults to a tabular classifier (only for ``DataSplits``).

    :raises ExportError: the bytes are not a valid ONNX model.
    :raises ContractViolationError: naming the tensor, split or label that does not fit."""
    proto = load_onnx(onnx_model, name)
    if contract is None:
        if not isinstance(data, DataSplits):
            raise ContractViolationError(f"{name}: a contract is needed for named-tensor data")
        inputs, _ = graph_tensors(proto)
        contract = ModelContract.for_classifier(
            data.feature_names, data.class_names, input_name=inputs[0].name
        )
    if isinstance(data, DataSplits):
        data = TensorData.from_splits(data, contract.inputs[0].name)
    check_against_graph(contract, proto)
    check_data(contract, data)
    runner = OrtRunner(onnx_model)
    val_outputs = run_named_batched(runner, data.val.inputs)
    test_outputs = run_named_batched(runner, data.test.inputs)
    check_outputs(contract, val_outputs, f"{name} on the validation split")
    check_outputs(contract, test_outputs, f"{name} on the test split")
    test = evaluate(contract, test_outputs, data.test)
    val = evaluate(contract, val_outputs, data.val)
    measured = {
        **{f"test_{k}": v for k, v in test.metrics.items()},
        f"val_{val.metric}": val.value,
        "onnx_size_bytes": float(len(onnx_model)),
    }
    return ModelPackage(
        name=name,
        model_files={ONNX_FILE: onnx_model},
        contract=contract,
        files={
            CONTRACT_FILE: contract.to_json().encode(),
            REFERENCE_FILE: reference_npz(data.val, val_outputs),
            DATA_FILE: data.to_npz(),
            **(extra_files or {}),
        },
        metrics={**measured, **(metrics or {})},
        params={"dataset": data.name, "data_fingerprint": data.fingerprint(), **(params or {})},
        tags={
            TAG_TASK: contract.task,
            TAG_METRIC: test.metric,
            "lifecycle.data_fingerprint": data.fingerprint(),
            **(tags or {}),
        },
        description=description,
    )


def load_torch_model(local: LocalVersion) -> nn.Module:
    """Rebuild a registered torch network from its architecture and safetensors weights (no unpickling)."""
    if not local.has_weights:
        raise ExportError(f"{local.name} v{local.version} carries no torch weights (ONNX-only version)")
    architecture = Architecture.from_json((local.files_dir / ARCHITECTURE_FILE).read_text())
    module = architecture.build()
    module.load_state_dict(load_safetensors((local.files_dir / WEIGHTS_FILE).read_bytes()))
    return module.eval()


__all__ = ["load_torch_model", "package_onnx_model", "package_torch_model"]
