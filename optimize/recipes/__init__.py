"""Recipes: ``(parent, options, workdir) -> Variant``. One module per tool family; heavy imports inside."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from lifecycle.errors import UnknownModelError
from optimize.variant import Parent, RecipeOptions, Variant

Recipe = Callable[[Parent, RecipeOptions, Path], Variant]


def _registry() -> dict[str, Recipe]:
    # the recipes import torch, NNCF, OpenVINO and ONNX Runtime's quantizer: loaded on first use
    from optimize.recipes import distill, onnx, openvino, ort_quant, prune, tensorrt

    return {
        "onnx-fp32": onnx.onnx_fp32,
        "onnx-fp16": onnx.onnx_fp16,
        "ort-int8-static": ort_quant.int8_static,
        "ort-int8-dynamic": ort_quant.int8_dynamic,
        "openvino-fp32": openvino.openvino_fp32,
        "openvino-fp16": openvino.openvino_fp16,
        "openvino-int8": openvino.openvino_int8,
        "prune-unstructured": prune.prune_unstructured,
        "prune-structured": prune.prune_structured,
        "distill": distill.distill,
        "tensorrt-fp16": tensorrt.tensorrt_fp16,
        "tensorrt-int8": tensorrt.tensorrt_int8,
    }


RECIPE_NAMES = (
    "onnx-fp32", "onnx-fp16", "ort-int8-static", "ort-int8-dynamic", "openvino-fp32", "openvino-fp16",
    "openvino-int8", "prune-unstructured", "prune-structured", "distill", "tensorrt-fp16", "tensorrt-int8",
)  # fmt: skip
DEFAULT_RECIPES = (
    "onnx-fp32", "onnx-fp16", "ort-int8-static", "ort-int8-dynamic", "openvino-fp32", "openvino-fp16",
    "openvino-int8", "prune-unstructured", "prune-structured", "distill", "distill+ort-int8-static",
    "tensorrt-fp16", "tensorrt-int8",
)  # fmt: skip


def resolve(spec: str) -> list[tuple[str, Recipe]]:
    """``"distill+ort-int8-static"`` → the chain of recipes, applied left to right.

    :raises UnknownModelError: naming the unknown step and the known recipes.
    """
    recipes = _registry()
    steps = []
    for step in spec.split("+"):
        if step not in recipes:
            raise UnknownModelError(f"unknown recipe {step!r} in {spec!r}; known: {', '.join(RECIPE_NAMES)}")
        steps.append((step, recipes[step]))
    return steps
