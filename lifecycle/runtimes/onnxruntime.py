"""ONNX Runtime adapter (CPU execution provider)."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from numpy.typing import NDArray

QUANTIZED_OPS = {
    "QuantizeLinear",
    "DequantizeLinear",
    "QLinearConv",
    "QLinearMatMul",
    "ConvInteger",
    "MatMulInteger",
}


def graph_precision(model: onnx.ModelProto) -> str:
    """``int8`` when the graph holds quantized ops, ``fp16`` when it holds half-precision weights, else ``fp32``."""
    if any(node.op_type in QUANTIZED_OPS for node in model.graph.node):
        return "int8"
    float_types = {init.data_type for init in model.graph.initializer}
    # a converted graph keeps a few blocked ops (and their constants) in fp32 behind Casts
    return "fp16" if onnx.TensorProto.FLOAT16 in float_types else "fp32"


SPINNING = {"run": ("1", "1"), "off": ("0", "0"), "always": ("1", "0")}
"""Intra-op thread spinning: ``(allow_spinning, force_spinning_stop)`` of each choice."""


def session_options(
    *, threads: int = 0, level: str = "all", profile_prefix: str | None = None, spinning: str = "run"
) -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: graph clean-up warnings of imported models are noise
    options.graph_optimization_level = {
        "disabled": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }[level]
    # Intra-op threads spin while a run lasts (no sleep and wake-up between its operators) and stop
    # the moment it returns (``force_spinning_stop``), so between requests they take no CPU from the
    # HTTP stack (spinning on between runs did). On the 2-core machine, digits-teacher
    # with 2 ms idle between calls (a server at concurrency 1): p50 1.44 ms and 2.77 ms of CPU per call,
    # against 1.97 ms and 3.15 ms with spinning off, and 1.45 ms but 5.34 ms of CPU with ORT's default
    # (benchmarks/ort_threads.py). "off" and "always" are there to compare.
    allow, stop = SPINNING[spinning]
    options.add_session_config_entry("session.intra_op.allow_spinning", allow)
    options.add_session_config_entry("session.force_spinning_stop", stop)
    if threads:
        options.intra_op_num_threads = threads
    if profile_prefix is not None:
        options.enable_profiling = True
        options.profile_file_prefix = profile_prefix
    return options


class OrtRunner:
    """One ONNX Runtime session; the graph optimisation level is recorded as ``optimization_level``."""

    runtime = "onnxruntime"

    def __init__(
        self, model: bytes | Path, *, threads: int = 0, level: str = "all", profile_prefix: str | None = None
    ) -> None:
        raw = model.read_bytes() if isinstance(model, Path) else model
        self.optimization_level = level
        self.precision = graph_precision(onnx.load_model_from_string(raw))
        self._session = ort.InferenceSession(
            raw,
            session_options(threads=threads, level=level, profile_prefix=profile_prefix),
            providers=["CPUExecutionProvider"],
        )
        self.input_name: str = self._session.get_inputs()[0].name
        self.output_name: str = self._session.get_outputs()[0].name
        self._half_input = self._session.get_inputs()[0].type == "tensor(float16)"
        self.output_names: list[str] = [o.name for o in self._session.get_outputs()]

    def run(self, x: NDArray[np.float32]) -> NDArray[np.float32]:
        feed = x.astype(np.float16) if self._half_input else x
        out = self._session.run([self.output_name], {self.input_name: feed})[0]
        return np.asarray(out, dtype=np.float32)

    def run_named(self, feeds: Mapping[str, NDArray[Any]]) -> dict[str, NDArray[Any]]:
        """Every output by name, for named inputs of any dtype (multi-input and multi-output models)."""
        outs = self._session.run(self.output_names, dict(feeds))
        return {name: np.asarray(out) for name, out in zip(self.output_names, outs, strict=True)}

    def end_profiling(self) -> dict[str, float]:
        """Stop profiling; return total microseconds per operator type (where the time goes)."""
        path = Path(self._session.end_profiling())
        totals: dict[str, float] = defaultdict(float)
        for event in json.loads(path.read_text()):
            op = event.get("args", {}).get("op_name")
            if event.get("cat") == "Node" and op and event.get("name", "").endswith("_kernel_time"):
                totals[op] += float(event.get("dur", 0))
        path.unlink(missing_ok=True)
        return dict(sorted(totals.items(), key=lambda kv: -kv[1]))
