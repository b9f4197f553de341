"""A contract from an ONNX graph's own tensors plus what the user says (task, names, shapes)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import onnx

from lifecycle.contract import Detection, ModelContract, Pooling
from lifecycle.graph import graph_tensors, override_shapes
from lifecycle.tensors import ContractViolationError, Dim, TensorSpec


@dataclass(frozen=True)
class ContractOptions:
    """What the graph cannot say about itself. Every field is optional."""

    task: str = "classification"
    primary_output: str = ""
    class_names: tuple[str, ...] = ()
    target_names: tuple[str, ...] = ()
    feature_names: tuple[str, ...] = ()
    scores: str | None = None
    """``logits`` or ``probabilities``; default: ``probabilities`` when the graph ends in Softmax."""
    shapes: Mapping[str, Sequence[Dim]] = field(default_factory=dict)
    """Shapes that replace the graph's (fix the sizes it leaves open, name its dimensions)."""
    pad_values: Mapping[str, float] = field(default_factory=dict)
    pooling: Pooling | None = None
    """Embedding: default mean over ``attention_mask`` (or over every token without one) when the
    output holds token states."""
    detection: Detection | None = None
    """Detection: default a YOLOv8 head."""

    def with_names(
        self,
        *,
        class_names: Sequence[str] = (),
        target_names: Sequence[str] = (),
        feature_names: Sequence[str] = (),
    ) -> ContractOptions:
        """Names found beside the data, where the user gave none."""
        return replace(
            self,
            class_names=self.class_names or tuple(class_names),
            target_names=self.target_names or tuple(target_names),
            feature_names=self.feature_names or tuple(feature_names),
        )


PASS_THROUGH = ("Identity", "Cast", "Reshape", "Flatten", "Squeeze", "Unsqueeze")


def ends_in_softmax(model: onnx.ModelProto, output: str) -> bool:
    """Whether ``output`` is a Softmax, looking through ops that keep values (Identity, Reshape, …)."""
    producers = {out: node for node in model.graph.node for out in node.output}
    node = producers.get(output)
    while node is not None and node.op_type in PASS_THROUGH and node.input:
        node = producers.get(node.input[0])
    return node is not None and node.op_type == "Softmax"


def contract_for_graph(model: onnx.ModelProto, options: ContractOptions) -> ModelContract:
    """:raises ContractViolationError: when the graph and the options cannot make a valid contract."""
    inputs, outputs = graph_tensors(model)
    names = {t.name for t in (*inputs, *outputs)}
    unknown = sorted(set(options.shapes) - names) + sorted(set(options.pad_values) - names)
    if unknown:
        raise ContractViolationError(
            f"shape or pad value given for unknown tensor(s) {unknown}; the graph has inputs "
            f"{[i.name for i in inputs]} and outputs {[o.name for o in outputs]}"
        )
    inputs = override_shapes(
        inputs, {k: v for k, v in options.shapes.items() if k in {i.name for i in inputs}}
    )
    outputs = override_shapes(
        outputs, {k: v for k, v in options.shapes.items() if k in {o.name for o in outputs}}
    )
    inputs = tuple(_pad(t, options.pad_values) for t in inputs)
    primary = options.primary_output or outputs[0].name
    if primary not in {o.name for o in outputs}:
        raise ContractViolationError(
            f"primary output {primary!r} is not an output of the graph: {[o.name for o in outputs]}"
        )
    scores = options.scores or ("probabilities" if ends_in_softmax(model, primary) else "logits")
    pooling = options.pooling
    if options.task == "embedding" and pooling is None:
        rank = next(o for o in outputs if o.name == primary).rank
        if rank == 3:
            mask = "attention_mask" if "attention_mask" in {i.name for i in inputs} else None
            pooling = Pooling("mean", mask=mask)
    detection = options.detection
    if options.task == "detection" and detection is None:
        detection = Detection()
    try:
        return ModelContract(
            inputs=inputs,
            outputs=outputs,
            task=options.task,
            primary_output=primary,
            feature_names=options.feature_names,
            class_names=options.class_names,
            target_names=options.target_names,
            scores=scores,
            pooling=pooling,
            detection=detection,
        )
    except ValueError as exc:
        if isinstance(exc, ContractViolationError):
            raise
        raise ContractViolationError(f"the graph and the options make no valid contract: {exc}") from exc


def _pad(spec: TensorSpec, pads: Mapping[str, float]) -> TensorSpec:
    return replace(spec, pad_value=float(pads[spec.name])) if spec.name in pads else spec


def parse_shape(text: str) -> tuple[str, tuple[Dim, ...]]:
    """``"x=batch,3,48,192"`` → ``("x", ("batch", 3, 48, 192))``."""
    name, sep, dims = text.partition("=")
    if not sep or not name or not dims:
        raise ContractViolationError(f"shape {text!r}: write NAME=DIM,DIM,… (e.g. x=batch,3,48,192)")
    parsed: list[Dim] = [int(d) if d.strip().isdigit() else d.strip() for d in dims.split(",")]
    return name.strip(), tuple(parsed)


def parse_pad(text: str) -> tuple[str, float]:
    """``"input_ids=0"`` → ``("input_ids", 0.0)``."""
    name, sep, value = text.partition("=")
    message = f"pad value {text!r}: write NAME=NUMBER (e.g. input_ids=0)"
    if not sep or not name.strip():
        raise ContractViolationError(message)
    try:
        return name.strip(), float(value)
    except ValueError:
        raise ContractViolationError(message) from None
