"""OpenVINO adapter (CPU plugin, LATENCY hint).

The CPU plugin runs "f32" models in bf16 on CPUs with avx512_bf16 unless told otherwise, so the inference precision hint is always explicit and read back.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import openvino as ov
from numpy.typing import NDArray

_PRECISION_NAMES = {"f32": "fp32", "bf16": "bf16", "f16": "fp16"}
_TYPE_NAMES = {
    "f32": "fp32",
    "float32": "fp32",
    "bf16": "bf16",
    "bfloat16": "bf16",
    "f16": "fp16",
    "float16": "fp16",
}


def _executed_precision(value: object) -> str:
    name = value.get_type_name() if hasattr(value, "get_type_name") else str(value)
    return _TYPE_NAMES.get(str(name).lower(), str(name))


def _has_fake_quantize(model: ov.Model) -> bool:
    return any(op.get_type_name() in ("FakeQuantize", "FakeConvert") for op in model.get_ops())


class OvRunner:
    runtime = "openvino"

    def __init__(
        self,
        model: Path | ov.Model,
        *,
        inference_precision: str = "f32",
        threads: int = 0,
        profile: bool = False,
    ) -> None:
        if inference_precision not in _PRECISION_NAMES:
            raise ValueError(
                f"inference precision {inference_precision!r}; use one of {sorted(_PRECISION_NAMES)}"
            )
        core = ov.Core()
        loaded = core.read_model(str(model)) if isinstance(model, Path) else model
        config: dict[str, str] = {
            "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_PRECISION_HINT": inference_precision,
        }
        if threads:
            config["INFERENCE_NUM_THREADS"] = str(threads)
        if profile:
            config["PERF_COUNT"] = "YES"
        self._compiled = core.compile_model(loaded, "CPU", config)
        float_precision = _executed_precision(self._compiled.get_property("INFERENCE_PRECISION_HINT"))
        self.float_precision = float_precision
        self.precision = "int8" if _has_fake_quantize(loaded) else float_precision
        self._request = self._compiled.create_infer_request()
        self.output_names = [out.get_any_name() for out in self._compiled.outputs]
        self._lock = threading.Lock()  # one infer request: serving calls run() from many threads

    def run(self, x: NDArray[np.float32]) -> NDArray[np.float32]:
        with self._lock:
            self._request.infer({0: x})
            return np.asarray(self._request.get_output_tensor(0).data, dtype=np.float32).copy()

    def run_named(self, feeds: Mapping[str, NDArray[Any]]) -> dict[str, NDArray[Any]]:
        """Every output by name (multi-input and multi-output models)."""
        with self._lock:
            self._request.infer(dict(feeds))
            return {
                name: np.asarray(self._request.get_output_tensor(i).data).copy()
                for i, name in enumerate(self.output_names)
            }

    def profile(self) -> dict[str, float]:
        """Microseconds per operator type of the last inference (needs ``profile=True``)."""
        totals: dict[str, float] = defaultdict(float)
        for info in self._request.profiling_info:
            totals[f"{info.node_type}/{info.exec_type}"] += info.real_time.total_seconds() * 1e6
        return dict(sorted(totals.items(), key=lambda kv: -kv[1]))
