"""Read an ONNX graph's own inputs and outputs, make a contract from them, and check a contract
against them: a registration that does not match its graph is refused before anything is stored."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

import onnx

from lifecycle.contract import ModelContract
from lifecycle.errors import ExportError
from lifecycle.tensors import BATCH, ContractViolationError, Dim, TensorSpec

ONNX_DTYPES: dict[int, str] = {
    onnx.TensorProto.FLOAT: "float32",
    onnx.TensorProto.FLOAT16: "float16",
    onnx.TensorProto.DOUBLE: "float64",
    onnx.TensorProto.INT64: "int64",
    onnx.TensorProto.INT32: "int32",
    onnx.TensorProto.UINT8: "uint8",
    onnx.TensorProto.BOOL: "bool",
}


def load_onnx(model: bytes, what: str = "model") -> onnx.ModelProto:
    """Parse and check an ONNX model.

    :raises ExportError: when the bytes are not a valid ONNX model."""
    try:
        proto = onnx.load_model_from_string(model)
        onnx.checker.check_model(proto)
    except Exception as exc:
        raise ExportError(f"{what} is not a valid ONNX model: {exc}") from exc
    return proto


def _readable(name: str) -> bool:
    """A dimension name worth keeping (exporters also write "?" and symbolic formulas)."""
    return bool(name) and len(name) <= 32 and name.replace("_", "").isalnum()


def _spec(value: onnx.ValueInfoProto, kind: str) -> TensorSpec:
    if not value.type.HasField("tensor_type"):
        raise ContractViolationError(
            f"{kind} {value.name!r} is not a tensor (a sequence or map): not supported"
        )
    tensor = value.type.tensor_type
    dtype = ONNX_DTYPES.get(int(tensor.elem_type))
    if dtype is None:
        name = onnx.TensorProto.DataType.Name(tensor.elem_type)
        raise ContractViolationError(
            f"{kind} {value.name!r} has element type {name}; supported: {', '.join(ONNX_DTYPES.values())}"
        )
    dims: list[Dim] = []
    for i, dim in enumerate(tensor.shape.dim):
        if dim.HasField("dim_value") and dim.dim_value > 0:
            dims.append(int(dim.dim_value))
        elif dim.HasField("dim_param") and _readable(dim.dim_param):
            dims.append(str(dim.dim_param))
        else:
            dims.append(BATCH if i == 0 else f"{value.name}_d{i}")
    if not dims:
        raise ContractViolationError(
            f"{kind} {value.name!r} is a scalar; a model's tensors have a batch dimension"
        )
    if isinstance(dims[0], int):
        # a graph exported with a fixed batch still takes batches of that size only
        raise ContractViolationError(
            f"{kind} {value.name!r} has a fixed batch dimension of {dims[0]} (shape {tuple(dims)}); "
            "export the model with a dynamic batch"
        )
    if dims[0] != BATCH:
        dims[0] = BATCH  # one name for the batch, whatever the exporter called it
    return TensorSpec(value.name, dtype, tuple(dims))


def graph_tensors(model: onnx.ModelProto) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
    """The graph's inputs (initializers excluded) and outputs as tensor specs."""
    initializers = {i.name for i in model.graph.initializer}
    inputs = tuple(_spec(v, "input") for v in model.graph.input if v.name not in initializers)
    outputs = tuple(_spec(v, "output") for v in model.graph.output)
    return inputs, outputs


def override_shapes(
    specs: Sequence[TensorSpec], shapes: Mapping[str, Sequence[Dim]]
) -> tuple[TensorSpec, ...]:
    """Replace the shapes named in ``shapes`` (the user knows the sizes the graph leaves open).

    :raises ContractViolationError: when a name is not one of ``specs``."""
    known = [s.name for s in specs]
    unknown = sorted(set(shapes) - set(known))
    if unknown:
        raise ContractViolationError(f"shape given for unknown tensor(s) {unknown}; the graph has {known}")
    return tuple(replace(s, shape=tuple(shapes[s.name])) if s.name in shapes else s for s in specs)


def check_against_graph(contract: ModelContract, model: onnx.ModelProto) -> None:
    """Names, dtypes, ranks and fixed sizes of the contract's tensors must be the graph's own.

    A dimension the graph leaves dynamic may be fixed or renamed by the contract; a size the graph
    fixes must be the same in the contract.

    :raises ContractViolationError: naming the tensor and what differs."""
    inputs, outputs = graph_tensors(model)
    for kind, declared, actual in (("input", contract.inputs, inputs), ("output", contract.outputs, outputs)):
        declared_names = [t.name for t in declared]
        actual_names = [t.name for t in actual]
        if sorted(declared_names) != sorted(actual_names):
            raise ContractViolationError(
                f"the contract's {kind}s {declared_names} are not the graph's {kind}s {actual_names}"
            )
        graph = {t.name: t for t in actual}
        for spec in declared:
            _check_tensor(kind, spec, graph[spec.name])


def _check_tensor(kind: str, spec: TensorSpec, graph: TensorSpec) -> None:
    if spec.dtype != graph.dtype:
        raise ContractViolationError(
            f"{kind} {spec.name!r}: the contract says {spec.dtype}, the graph says {graph.dtype}"
        )
    if spec.rank != graph.rank:
        raise ContractViolationError(
            f"{kind} {spec.name!r}: the contract's shape {spec.shape} has rank {spec.rank}, "
            f"the graph's {graph.shape} has rank {graph.rank}"
        )
    for i, (mine, theirs) in enumerate(zip(spec.shape, graph.shape, strict=True)):
        if isinstance(theirs, int) and mine != theirs:
            raise ContractViolationError(
                f"{kind} {spec.name!r}: dimension {i} is {mine!r} in the contract but fixed at {theirs} "
                f"in the graph {graph.shape}"
            )


def ml_operators(model: onnx.ModelProto) -> list[str]:
    """The ONNX-ML operators of a graph (tree ensembles, scalers, … from skl2onnx): ONNX Runtime runs
    them; OpenVINO, the float16 converter and the quantizers do not take them."""
    return sorted({n.op_type for n in model.graph.node if n.domain == "ai.onnx.ml"})
