"""Where the time goes (per-operator profiles) and which tools made a variant."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from importlib import metadata
from typing import Any

from numpy.typing import NDArray

from optimize.variant import Variant

TOOLS = ("torch", "onnx", "onnxruntime", "openvino", "nncf", "mlflow", "tensorrt")


def tool_versions() -> dict[str, str]:
    out = {}
    for tool in TOOLS:
        try:
            out[f"version.{tool}"] = metadata.version(tool)
        except metadata.PackageNotFoundError:
            out[f"version.{tool}"] = "not installed"
    return out


def operator_profile(variant: Variant, feeds: Mapping[str, NDArray[Any]], runs: int = 20) -> dict[str, float]:
    """Microseconds per operator type over ``runs`` batch-1 inferences (ORT and OpenVINO)."""
    if variant.runtime == "onnxruntime":
        from lifecycle.runtimes.onnxruntime import OrtRunner  # a runtime loads when profiled

        with tempfile.TemporaryDirectory() as tmp:
            runner = OrtRunner(variant.files["model.onnx"], profile_prefix=f"{tmp}/p")
            for _ in range(runs):
                runner.run_named(feeds)
            return runner.end_profiling()
    if variant.runtime == "openvino":
        from lifecycle.runtimes.openvino import OvRunner  # OpenVINO loads when profiled

        ov_runner = OvRunner(
            variant.files["model.xml"], inference_precision=variant.inference_precision or "f32", profile=True
        )
        totals: dict[str, float] = {}
        for _ in range(runs):
            ov_runner.run_named(feeds)
            for op, us in ov_runner.profile().items():
                totals[op] = totals.get(op, 0.0) + us
        return dict(sorted(totals.items(), key=lambda kv: -kv[1]))
    return {}
