"""ONNX Runtime adapter (CPU execution provider)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray


class OrtRunner:
    """One ONNX Runtime session with full graph optimisation and no thread spinning.

    Spinning intra-op threads steal CPU from the HTTP stack on small machines (STACK_NOTES §11).
    """

    def __init__(self, model: bytes | Path, *, threads: int = 0) -> None:
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if threads:
            options.intra_op_num_threads = threads
        source = str(model) if isinstance(model, Path) else model
        self._session = ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
        self.input_name: str = self._session.get_inputs()[0].name
        self.output_name: str = self._session.get_outputs()[0].name

    def run(self, x: NDArray[np.float32]) -> NDArray[np.float32]:
        out = self._session.run([self.output_name], {self.input_name: x})[0]
        return np.asarray(out, dtype=np.float32)

    def run_batched(self, x: NDArray[np.float32], batch_size: int = 256) -> NDArray[np.float32]:
        return np.concatenate([self.run(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])
