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


def with_classifier_interface(student: bytes, contract: ModelContract, *, logits: str = "logits") -> bytes:
    """A student classifier's graph (one input, one ``logits`` output) answering with its parent's
    interface: the parent's input name, and each of the parent's outputs — the class scores (the
    primary output: softmax of the logits where the parent answers probabilities) and a class-index
    label (``int64 (batch,)``, the argmax) — so that the student is a drop-in replacement.

    :raises ContractViolationError: naming a parent output a student cannot answer.
    """
    model = onnx.load_from_string(student)
    graph = model.graph
    (source,) = [i for i in graph.input if i.name not in {t.name for t in graph.initializer}]
    target = contract.inputs[0].name
    if source.name != target:
        for node in graph.node:
            node.input[:] = [target if name == source.name else name for name in node.input]
        source.name = target
    (produced,) = [o for o in graph.output if o.name == logits]
    outputs = []
    for spec in contract.outputs:
        if spec.name == contract.primary_output:
            answer = [f"{spec.name}__answer"]
            if contract.scores == "probabilities":
                graph.node.append(onnx.helper.make_node("Softmax", [produced.name], answer, axis=1))
            else:
                graph.node.append(onnx.helper.make_node("Identity", [produced.name], answer))
        elif spec.dtype == "int64" and len(spec.shape) == 1:
            graph.node.append(
                onnx.helper.make_node("ArgMax", [produced.name], [f"{spec.name}__answer"], axis=1, keepdims=0)
            )
        else:
            raise ContractViolationError(
                f"output {spec.name!r} ({spec.dtype} {spec.shape}) has no counterpart in a student classifier"
            )
        graph.node.append(onnx.helper.make_node("Identity", [f"{spec.name}__answer"], [spec.name]))
        elem = next(k for k, v in ONNX_DTYPES.items() if v == spec.dtype)
        dims = [d if isinstance(d, int) else str(d) for d in spec.shape]
        outputs.append(onnx.helper.make_tensor_value_info(spec.name, elem, dims))
    del graph.output[:]
    graph.output.extend(outputs)
    onnx.checker.check_model(model)
    return bytes(model.SerializeToString())
