"""ONNX Runtime INT8: static QDQ (calibrated) and dynamic quantization.

Traps measured on this stack: S8S8 is barely faster than FP32 on x86 — VNNI's
``vpdpbusd`` multiplies u8 × s8, so activations are U8 and weights S8; dynamic quantization turns
Conv into ConvInteger, 8–18× slower than FP32 (so the dynamic recipe skips convolutional graphs);
the dynamo exporter writes stale ``value_info`` that breaks ``quantize_dynamic`` unless removed.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import onnx
from numpy.typing import NDArray

from lifecycle.evaluate import Evaluation
from lifecycle.runtimes.onnxruntime import OrtRunner
from lifecycle.tensors import arrays_sha256, batch_size, take
from optimize.cpu import has_vnni
from optimize.gates import GateResult
from optimize.judge import Judge
from optimize.variant import Parent, RecipeOptions, RecipeSkippedError, Variant

QUANTIZABLE = ("Conv", "Gemm", "MatMul")
MAX_EXCLUDED = 4
MAX_PROBES = 12


class _Reader:
    """ORT's CalibrationDataReader protocol: ``get_next`` until None, named inputs per batch."""

    def __init__(self, inputs: Mapping[str, NDArray[Any]], batch: int = 16) -> None:
        n = batch_size(inputs)
        self._batches = iter(take(inputs, slice(i, i + batch)) for i in range(0, n, batch))

    def get_next(self) -> dict[str, NDArray[Any]] | None:
        return next(self._batches, None)


@contextmanager
def _quiet_root_logger() -> Iterator[None]:
    """The quantizer logs "Please consider pre-processing" on the root logger at every call; pre-processing
    is not needed for static QDQ, so the advice is noise in our tables."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def float_tail(model: onnx.ModelProto, *, heads: bool = False) -> list[str]:
    """The nodes between the last compute ops (Conv, Gemm, MatMul) and the graph's outputs, and with
    ``heads`` those last compute ops too.

    They stay in float: a head often concatenates values of different ranges into one output
    (YOLOv8: box coordinates in pixels beside class scores in [0, 1]), and one INT8 scale for
    both wipes out the small ones; the last layers (box regressors, classifiers) are where 8 bits
    cost the most fidelity for the least time."""
    producers = {out: node for node in model.graph.node for out in node.output}
    tail: list[str] = []
    seen: set[int] = set()
    stack = [o.name for o in model.graph.output]
    while stack:
        node = producers.get(stack.pop())
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        if node.op_type in QUANTIZABLE:
            if heads and node.name:
                tail.append(node.name)
            continue
        if node.name:
            tail.append(node.name)
        stack.extend(node.input)
    return tail


def _strip_value_info(model: onnx.ModelProto) -> onnx.ModelProto:
    del model.graph.value_info[:]
    return model


def int8_static(parent: Parent, options: RecipeOptions, workdir: Path) -> Variant:
    """QDQ, per-channel weights, calibrated on a seeded, hashed subset of the training inputs.

    When the task metric on the validation split misses its gate (accuracy, RMSE, cosine, mAP …),
    escalate as users do by hand: rank layers by how much keeping each in float recovers, then keep
    the worst 1, 2, 4 in float, then quantization-aware training where a torch module exists."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    methods = {
        "minmax": CalibrationMethod.MinMax,
        "entropy": CalibrationMethod.Entropy,
        "percentile": CalibrationMethod.Percentile,
    }
    if options.calibration_method not in methods:
        raise ValueError(f"calibration method {options.calibration_method!r}; use one of {sorted(methods)}")
    workdir.mkdir(parents=True, exist_ok=True)
    source = workdir / "fp32.onnx"
    model = onnx.load_model_from_string(parent.onnx_model)
    ops = {n.op_type for n in model.graph.node}
    if not ops & set(QUANTIZABLE):
        raise RecipeSkippedError(
            f"the graph has no Conv, MatMul or Gemm to quantize (ops: {', '.join(sorted(ops))})"
        )
    source.write_bytes(model.SerializeToString())
    tail = float_tail(model)
    heads = [n for n in float_tail(model, heads=True) if n not in tail]
    # a transformer's LayerNorm, Softmax and residual Adds lose too much in 8 bits: only its matmuls
    op_types = list(DENSE) if is_dense(model) else None
    calibration = parent.data.calibration(options.calibration_size, seed=options.seed)
    vnni = has_vnni()
    settings = {
        "format": "QDQ",
        "per_channel": "true",
        "activation_type": "QUInt8",
        "weight_type": "QInt8",
        "type_reason": "U8S8: x86 VNNI multiplies u8 x s8" if vnni else "U8S8 with reduce_range (no VNNI)",
        "calibration_method": options.calibration_method,
        "calibration_size": str(batch_size(calibration)),
        "calibration_sha256": arrays_sha256(calibration),
        "tail_kept_in_float": str(len(tail)),
        "op_types": ",".join(op_types) if op_types else "all",
    }

    def quantize(exclude: list[str], name: str) -> Path:
        out = workdir / name
        with _quiet_root_logger():
            quantize_static(
                str(source), str(out), _Reader(calibration),
                quant_format=QuantFormat.QDQ, per_channel=True, reduce_range=not vnni,
                activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                calibrate_method=methods[options.calibration_method], nodes_to_exclude=[*tail, *exclude],
                op_types_to_quantize=op_types,
            )  # fmt: skip
        return out

    check = _checker(parent, options)
    best, candidate, attempts, passed = _escalate(source, quantize, check, settings, heads)
    if not passed:
        best = _qat_attempt(parent, options, source, quantize, check, best, candidate, attempts)
        if "qat_epochs" in attempts[-1]:
            settings["quantization_aware_training"] = attempts[-1]["qat_epochs"]
    final = workdir / "model.onnx"
    if best != final:
        final.write_bytes(best.read_bytes())
    return Variant(
        "ort-int8-static", "onnx", {"model.onnx": final}, "onnxruntime", settings=settings, attempts=attempts
    )


Check = Callable[[Path], tuple[Evaluation, GateResult]]


def _checker(parent: Parent, options: RecipeOptions) -> Check:
    """The task metric of a candidate file on the validation split, judged by its gate."""
    judge = Judge(parent, "val", options.gate_config())

    def check(path: Path) -> tuple[Evaluation, GateResult]:
        candidate = judge.evaluate(judge.outputs_of(OrtRunner(path)))
        return candidate, judge.gate(candidate)

    return check


def _escalate(
    source: Path,
    quantize: Callable[[list[str], str], Path],
    check: Check,
    settings: dict[str, str],
    heads: Sequence[str] = (),
) -> tuple[Path, Evaluation, list[dict[str, str]], bool]:
    """Quantize everything; when the gate fails, keep the output layers (``heads``) in float, then
    the 1, 2, 4 most sensitive nodes."""
    best = quantize([], "model.onnx")
    candidate, gate = check(best)
    attempts = [_attempt("full int8", candidate, gate)]
    if gate.passed:
        return best, candidate, attempts, True
    if heads:
        best = quantize(list(heads), "model-heads.onnx")
        candidate, gate = check(best)
        attempts.append(
            {**_attempt("keep the output layers in float", candidate, gate), "nodes": ",".join(heads)}
        )
        if gate.passed:
            settings["nodes_kept_in_float"] = ",".join(heads)
            return best, candidate, attempts, True
    ranking = _sensitivity(source, quantize, lambda path: Judge.score(check(path)[0]))
    attempts.append({"step": "sensitivity ranking", "order": ",".join(n for n, _ in ranking[:MAX_EXCLUDED])})
    # Never keep every layer in float: an "int8" variant must quantize something.
    for k in [k for k in (1, 2, 4) if k < len(ranking)]:
        excluded = [n for n, _ in ranking[:k]]
        best = quantize(excluded, f"model-keep{k}.onnx")
        candidate, gate = check(best)
        attempts.append({**_attempt(f"keep {k} in float", candidate, gate), "nodes": ",".join(excluded)})
        settings["nodes_kept_in_float"] = ",".join(excluded)
        if gate.passed:
            return best, candidate, attempts, True
    return best, candidate, attempts, False


def _attempt(step: str, candidate: Evaluation, gate: GateResult) -> dict[str, str]:
    return {"step": step, f"val_{candidate.metric}": f"{candidate.value:.4f}", "gate": gate.message}


def _qat_attempt(
    parent: Parent,
    options: RecipeOptions,
    source: Path,
    quantize: Callable[[list[str], str], Path],
    check: Callable[[Path], tuple[Evaluation, GateResult]],
    best: Path,
    best_eval: Evaluation,
    attempts: list[dict[str, str]],
) -> Path:
    """Fine-tune under fake quantization, re-export, quantize; keep it only if it beats ``best``."""
    if parent.module is None:
        attempts.append({"step": "quantization-aware training", "result": "skipped: no torch weights"})
        return best
    # torch's fake-quantization training loads only when escalation reaches it
    from lifecycle.export import export_onnx
    from optimize.recipes.qat import qat_fine_tune

    splits = parent.splits
    tuned = qat_fine_tune(
        parent.module, splits, epochs=options.fine_tune_epochs, lr=options.fine_tune_lr / 3, seed=options.seed
    )
    source.write_bytes(export_onnx(tuned, splits.x_val[:2]))
    candidate_path = quantize([], "model-qat.onnx")
    candidate, gate = check(candidate_path)
    kept = Judge.score(candidate) > Judge.score(best_eval)
    attempts.append({
        **_attempt("quantization-aware training", candidate, gate), "qat_epochs": str(options.fine_tune_epochs),
        "result": "kept" if kept else "worse than keeping layers in float",
    })  # fmt: skip
    return candidate_path if kept else best


def _sensitivity(
    source: Path, quantize: Callable[[list[str], str], Path], score: Callable[[Path], float]
) -> list[tuple[str, float]]:
    """The task metric recovered by keeping each quantizable node in float, best first. Large
    graphs probe the first and last ``MAX_PROBES / 2`` (stems and heads, where INT8 hurts most):
    each probe is a quantization and an evaluation."""
    nodes = [n.name for n in onnx.load_model(str(source)).graph.node if n.op_type in QUANTIZABLE]
    if len(nodes) > MAX_PROBES:
        nodes = [*nodes[: MAX_PROBES // 2], *nodes[-MAX_PROBES // 2 :]]
    scores = [(name, score(quantize([name], f"probe-{i}.onnx"))) for i, name in enumerate(nodes)]
    return sorted(scores, key=lambda item: -item[1])


DENSE = ("MatMul", "Gemm")


def is_dense(model: onnx.ModelProto) -> bool:
    """More MatMul/Gemm than Conv: a transformer or an MLP."""
    ops = Counter(n.op_type for n in model.graph.node)
    return ops["MatMul"] + ops["Gemm"] > ops["Conv"]


def int8_dynamic(parent: Parent, options: RecipeOptions, workdir: Path) -> Variant:
    """Weights INT8 per channel ahead of time, activations quantized per call at run time, on MatMul
    and Gemm: what transformers and MLPs gain from (per-tensor weights cost MiniLM 0.03 of cosine,
    per-channel 0.008). Escalates like the static recipe when the task metric misses its gate. A
    convolutional graph is skipped with the reason: dynamic quantization turns Conv into ConvInteger,
    8–18× slower than FP32 on CPU (static QDQ fits it)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model = onnx.load_model_from_string(parent.onnx_model)
    ops = Counter(n.op_type for n in model.graph.node)
    dense = ops["MatMul"] + ops["Gemm"]
    if dense == 0:
        raise RecipeSkippedError(
            f"the graph has no MatMul or Gemm to quantize (ops: {', '.join(sorted(ops))})"
        )
    if not is_dense(model):
        raise RecipeSkippedError(
            f"the graph is convolutional ({ops['Conv']} Conv, {dense} MatMul/Gemm): dynamic INT8 makes "
            "ConvInteger, 8–18× slower than FP32 on CPU; ort-int8-static fits it"
        )
    workdir.mkdir(parents=True, exist_ok=True)
    source = workdir / "fp32.onnx"
    onnx.save_model(_strip_value_info(model), str(source))

    def quantize(exclude: list[str], name: str) -> Path:
        out = workdir / name
        with _quiet_root_logger():
            quantize_dynamic(
                str(source), str(out), weight_type=QuantType.QInt8, per_channel=True,
                op_types_to_quantize=list(DENSE), nodes_to_exclude=exclude,
            )  # fmt: skip
        return out

    settings = {"weight_type": "QInt8", "per_channel": "true", "op_types": ",".join(DENSE),
                "graph": f"{dense} MatMul/Gemm, {ops['Conv']} Conv"}  # fmt: skip
    best, _, attempts, _ = _escalate(source, quantize, _checker(parent, options), settings)
    final = workdir / "model.onnx"
    if best != final:
        final.write_bytes(best.read_bytes())
    return Variant(
        "ort-int8-dynamic", "onnx", {"model.onnx": final}, "onnxruntime", settings=settings, attempts=attempts
    )
