"""ONNX export recipes, executed by ONNX Runtime."""

from __future__ import annotations

from pathlib import Path

import onnx

from lifecycle.export import OPSET, export_onnx, verify_export
from lifecycle.graph import ml_operators
from optimize.variant import Parent, RecipeOptions, RecipeSkippedError, Variant


def onnx_fp32(parent: Parent, options: RecipeOptions, workdir: Path) -> Variant:
    """Export from torch with a dynamic batch axis (logits checked at batch 1 and > 1)."""
    if parent.module is None:
        raise RecipeSkippedError(
            f"{parent.name} v{parent.version} already is an ONNX graph, with no torch weights to export again"
        )
    path = workdir / "model.onnx"
    model = export_onnx(parent.module, parent.splits.x_val[:2])
    diff = verify_export(parent.module, model, parent.splits.x_val[:7])
    path.write_bytes(model)
    settings = {
        "opset": str(OPSET), "graph_optimization_level": "all", "dynamic_batch": "true",
        "export_max_abs_diff_vs_torch": f"{diff:.3e}",
    }  # fmt: skip
    return Variant("onnx-fp32", "onnx", {"model.onnx": path}, "onnxruntime", settings=settings)


def onnx_fp16(parent: Parent, options: RecipeOptions, workdir: Path) -> Variant:
    """Float16 weights and activations; inputs and outputs stay float32 so the contract is unchanged."""
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = onnx.load_model_from_string(parent.onnx_model)
    ml_ops = ml_operators(model)
    if ml_ops:
        raise RecipeSkippedError(
            f"the float16 converter does not take the ONNX-ML operators {', '.join(ml_ops)}"
        )
    half = convert_float_to_float16(model, keep_io_types=True)
    path = workdir / "model.onnx"
    onnx.save_model(half, str(path))
    return Variant(
        "onnx-fp16", "onnx", {"model.onnx": path}, "onnxruntime",
        settings={"keep_io_types": "true", "graph_optimization_level": "all"},
        notes=["ONNX Runtime's CPU provider has few fp16 kernels: expect Cast nodes and no speed-up on CPU"],
    )  # fmt: skip
