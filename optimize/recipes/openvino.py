"""OpenVINO IR recipes. The inference precision hint is always explicit: the CPU plugin would run
"f32" as bf16 on CPUs with avx512_bf16. The runner reports what executed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import onnx

from lifecycle.graph import ml_operators
from lifecycle.tensors import arrays_sha256, batch_size, take
from optimize.recipes.ort_quant import float_tail, is_dense
from optimize.variant import Parent, RecipeOptions, RecipeSkippedError, Variant


def _convert(parent: Parent, workdir: Path) -> Any:
    import openvino as ov

    ml_ops = ml_operators(onnx.load_model_from_string(parent.onnx_model))
    if ml_ops:
        raise RecipeSkippedError(f"OpenVINO does not read the ONNX-ML operators {', '.join(ml_ops)}")

    source = workdir / "source.onnx"
    source.write_bytes(parent.onnx_model)
    return ov.convert_model(str(source))


def _save(model: Any, workdir: Path, *, compress_to_fp16: bool) -> dict[str, Path]:
    import openvino as ov

    xml = workdir / "model.xml"
    ov.save_model(model, str(xml), compress_to_fp16=compress_to_fp16)
    return {"model.xml": xml, "model.bin": workdir / "model.bin"}


def openvino_fp32(parent: Parent, options: RecipeOptions, workdir: Path) -> Variant:
    files = _save(_convert(parent, workdir), workdir, compress_to_fp16=False)
    return Variant(
        "openvino-fp32", "openvino", files, "openvino", inference_precision="f32",
        settings={"compress_to_fp16": "false", "performance_hint": "LATENCY", "inference_precision_hint": "f32"},
    )  # fmt: skip


def openvino_fp16(parent: Parent, options: RecipeOptions, workdir: Path) -> Variant:
    files = _save(_convert(parent, workdir), workdir, compress_to_fp16=True)
    return Variant(
        "openvino-fp16", "openvino", files, "openvino", inference_precision="f16",
        settings={"compress_to_fp16": "true", "performance_hint": "LATENCY", "inference_precision_hint": "f16"},
        notes=["weights stored as fp16; the CPU plugin executes f16 requests in the precision it supports"],
    )  # fmt: skip


def openvino_int8(parent: Parent, options: RecipeOptions, workdir: Path) -> Variant:
    """NNCF post-training quantization on a seeded calibration subset."""
    import nncf

    calibration = parent.data.calibration(options.calibration_size, seed=options.seed)
    batches = [take(calibration, slice(i, i + 1)) for i in range(batch_size(calibration))]
    model = onnx.load_model_from_string(parent.onnx_model)
    transformer = is_dense(model)
    tail = float_tail(model)  # as for ONNX Runtime: a head that mixes ranges stays in float
    # NNCF's transformer scheme keeps LayerNorm, Softmax and the residual adds in float (MiniLM:
    # cosine 0.64 to FP32 without it)
    extra = {"model_type": nncf.ModelType.TRANSFORMER} if transformer else {}
    quantized = nncf.quantize(
        _convert(parent, workdir), nncf.Dataset(batches), subset_size=len(batches),
        preset=nncf.QuantizationPreset.MIXED if transformer else nncf.QuantizationPreset.PERFORMANCE,
        ignored_scope=nncf.IgnoredScope(names=tail, validate=False), **extra,
    )  # fmt: skip
    files = _save(quantized, workdir, compress_to_fp16=False)
    return Variant(
        "openvino-int8", "openvino", files, "openvino", inference_precision="f32",
        settings={
            "tool": "nncf.quantize", "preset": "mixed" if transformer else "performance",
            "model_type": "transformer" if transformer else "default", "subset_size": str(len(batches)),
            "calibration_sha256": arrays_sha256(calibration), "inference_precision_hint": "f32",
            "tail_kept_in_float": str(len(tail)),
        },
    )  # fmt: skip
