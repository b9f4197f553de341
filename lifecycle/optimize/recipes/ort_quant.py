"""ONNX Runtime INT8: static QDQ (calibrated) and dynamic quantization.

Traps measured on this stack (STACK_NOTES §2): S8S8 is barely faster than FP32 on x86 — VNNI's
``vpdpbusd`` multiplies u8 × s8, so activations are U8 and weights S8; dynamic quantization turns
Conv into ConvInteger, 8–18× slower than FP32 (the speed gate must reject it); the dynamo exporter
writes stale ``value_info`` that breaks ``quantize_dynamic`` unless removed.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import onnx
from numpy.typing import NDArray

from lifecycle.optimize.cpu import has_vnni
from lifecycle.optimize.variant import Parent, RecipeOptions, Variant
from lifecycle.runtimes.base import run_batched
from lifecycle.runtimes.onnxruntime import OrtRunner
from lifecycle.training import accuracy

QUANTIZABLE = ("Conv", "Gemm", "MatMul")
MAX_EXCLUDED = 4


class _Reader:
    """ORT's CalibrationDataReader protocol: ``get_next`` until None."""

    def __init__(self, input_name: str, x: NDArray[np.float32], batch: int = 16) -> None:
        self._batches = iter({input_name: x[i : i + batch]} for i in range(0, len(x), batch))

    def get_next(self) -> dict[str, NDArray[np.float32]] | None:
        return next(self._batches, None)


@contextmanager
def _quiet_root_logger() -> Iterator[None]:
    """The quantizer logs "Please consider pre-processing" on the root logger at every call; pre-processing
    is not needed for static QDQ (STACK_NOTES §2), so the advice is noise in our tables."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def _strip_value_info(model: onnx.ModelProto) -> onnx.ModelProto:
    del model.graph.value_info[:]
    return model


def int8_static(parent: Parent, options: RecipeOptions, workdir: Path) -> Variant:
    """QDQ, per-channel weights, calibrated on a seeded, hashed subset of the training inputs.

    When validation accuracy drops more than ``options.max_accuracy_drop``, escalate as users do by
    hand: rank layers by how much keeping each in float recovers, then keep the worst 1, 2, 4 in float.
    """
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
    source.write_bytes(onnx.load_model_from_string(parent.onnx_model).SerializeToString())
    input_name = OrtRunner(parent.onnx_model).input_name
    calibration = parent.data.calibration(options.calibration_size, seed=options.seed)
    vnni = has_vnni()
    activation = QuantType.QUInt8
    settings = {
        "format": "QDQ",
        "per_channel": "true",
        "activation_type": "QUInt8",
        "weight_type": "QInt8",
        "type_reason": "U8S8: x86 VNNI multiplies u8 x s8" if vnni else "U8S8 with reduce_range (no VNNI)",
        "calibration_method": options.calibration_method,
        "calibration_size": str(len(calibration)),
        "calibration_sha256": hashlib.sha256(calibration.tobytes()).hexdigest(),
    }

    def quantize(exclude: list[str], name: str) -> Path:
        out = workdir / name
        with _quiet_root_logger():
            quantize_static(
                str(source), str(out), _Reader(input_name, calibration),
                quant_format=QuantFormat.QDQ, per_channel=True, reduce_range=not vnni,
                activation_type=activation, weight_type=QuantType.QInt8,
                calibrate_method=methods[options.calibration_method], nodes_to_exclude=exclude,
            )  # fmt: skip
        return out

    def val_accuracy(path: Path) -> float:
        return accuracy(run_batched(OrtRunner(path), parent.data.x_val), parent.data.y_val)

    reference = accuracy(run_batched(OrtRunner(parent.onnx_model), parent.data.x_val), parent.data.y_val)
    best = quantize([], "model.onnx")
    drop = reference - val_accuracy(best)
    attempts = [{"step": "full int8", "val_accuracy_drop": f"{drop:.4f}"}]
    if drop > options.max_accuracy_drop:
        ranking = _sensitivity(source, quantize, val_accuracy)
        attempts.append(
            {"step": "sensitivity ranking", "order": ",".join(n for n, _ in ranking[:MAX_EXCLUDED])}
        )
        excluded: list[str] = []
        # Never keep every layer in float: an "int8" variant must quantize something.
        for k in [k for k in (1, 2, 4) if k < len(ranking)]:
            excluded = [n for n, _ in ranking[:k]]
            candidate = quantize(excluded, f"model-keep{k}.onnx")
            drop = reference - val_accuracy(candidate)
            attempts.append(
                {
                    "step": f"keep {k} in float",
                    "nodes": ",".join(excluded),
                    "val_accuracy_drop": f"{drop:.4f}",
                }
            )
            best = candidate
            settings["nodes_kept_in_float"] = ",".join(excluded)
            if drop <= options.max_accuracy_drop:
                break
        else:
            best, drop = _qat_attempt(
                parent, options, source, quantize, val_accuracy, reference, best, drop, attempts
            )
            if "qat_epochs" in attempts[-1]:
                settings["quantization_aware_training"] = attempts[-1]["qat_epochs"]
    final = workdir / "model.onnx"
    if best != final:
        final.write_bytes(best.read_bytes())
    return Variant(
        "ort-int8-static", "onnx", {"model.onnx": final}, "onnxruntime", settings=settings, attempts=attempts
    )


def _qat_attempt(
    parent: Parent,
    options: RecipeOptions,
    source: Path,
    quantize: Callable[[list[str], str], Path],
    val_accuracy: Callable[[Path], float],
    reference: float,
    best: Path,
    drop: float,
    attempts: list[dict[str, str]],
) -> tuple[Path, float]:
    """Fine-tune under fake quantization, re-export, quantize; keep it only if it beats ``best``."""
    if parent.module is None:
        attempts.append({"step": "quantization-aware training", "result": "skipped: no torch weights"})
        return best, drop
    from lifecycle.export import export_onnx
    from lifecycle.optimize.recipes.qat import qat_fine_tune

    tuned = qat_fine_tune(
        parent.module,
        parent.data,
        epochs=options.fine_tune_epochs,
        lr=options.fine_tune_lr / 3,
        seed=options.seed,
    )
    source.write_bytes(export_onnx(tuned, parent.data.x_val[:2]))
    candidate = quantize([], "model-qat.onnx")
    qat_drop = reference - val_accuracy(candidate)
    kept = qat_drop < drop
    attempts.append({
        "step": "quantization-aware training", "qat_epochs": str(options.fine_tune_epochs),
        "val_accuracy_drop": f"{qat_drop:.4f}", "result": "kept" if kept else "worse than keeping layers in float",
    })  # fmt: skip
    return (candidate, qat_drop) if kept else (best, drop)


def _sensitivity(
    source: Path, quantize: Callable[[list[str], str], Path], val_accuracy: Callable[[Path], float]
) -> list[tuple[str, float]]:
    """Accuracy recovered by keeping each quantizable node in float, best first."""
    nodes = [n.name for n in onnx.load_model(str(source)).graph.node if n.op_type in QUANTIZABLE]
    scores = [(name, val_accuracy(quantize([name], f"probe-{i}.onnx"))) for i, name in enumerate(nodes)]
    return sorted(scores, key=lambda item: -item[1])


def int8_dynamic(parent: Parent, options: RecipeOptions, workdir: Path) -> Variant:
    """Weights INT8 ahead of time, activations quantized per batch at run time. Fits MatMul/Gemm-heavy
    models; on a CNN it produces ConvInteger, which the speed gate is expected to reject."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    source = workdir / "fp32.onnx"
    onnx.save_model(_strip_value_info(onnx.load_model_from_string(parent.onnx_model)), str(source))
    out = workdir / "model.onnx"
    with _quiet_root_logger():
        quantize_dynamic(str(source), str(out), weight_type=QuantType.QInt8, per_channel=False)
    ops = {n.op_type for n in onnx.load_model(str(out)).graph.node}
    notes = []
    if "ConvInteger" in ops:
        notes.append("Conv became ConvInteger: dynamic quantization of convolutions is slow on CPU")
    return Variant(
        "ort-int8-dynamic", "onnx", {"model.onnx": out}, "onnxruntime",
        settings={"weight_type": "QInt8", "per_channel": "false", "ops": ",".join(sorted(ops & {"ConvInteger", "MatMulInteger", "DynamicQuantizeLinear"}))},
        notes=notes,
    )  # fmt: skip
