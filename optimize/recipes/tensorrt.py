"""TensorRT recipes (GPU only). Precision lives in the ONNX graph (TensorRT 11): FP16 from the ONNX
float16 converter, INT8 from the ONNX Runtime QDQ quantizer. Skipped, with the reason, where no
NVIDIA GPU with TensorRT exists."""

from __future__ import annotations

from pathlib import Path

from lifecycle.runtimes.base import RuntimeUnavailableError
from optimize.recipes.onnx import onnx_fp16
from optimize.recipes.ort_quant import int8_static
from optimize.variant import Parent, RecipeOptions, RecipeSkippedError, Variant


def _require_tensorrt() -> None:
    # TensorRT and CUDA load only where a TensorRT recipe is asked for
    from lifecycle.runtimes import tensorrt

    try:
        tensorrt._import()
    except RuntimeUnavailableError as exc:
        raise RecipeSkippedError(str(exc)) from exc


def tensorrt_fp16(parent: Parent, options: RecipeOptions, workdir: Path) -> Variant:
    _require_tensorrt()
    base = onnx_fp16(parent, options, workdir)
    return Variant(
        "tensorrt-fp16", "onnx", base.files, "tensorrt", settings={**base.settings, "engine": "built at load"}
    )


def tensorrt_int8(parent: Parent, options: RecipeOptions, workdir: Path) -> Variant:
    _require_tensorrt()
    base = int8_static(parent, options, workdir)
    return Variant(
        "tensorrt-int8", "onnx", base.files, "tensorrt",
        settings={**base.settings, "engine": "built at load"}, attempts=base.attempts,
    )  # fmt: skip
