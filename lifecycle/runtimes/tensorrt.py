"""TensorRT adapter (TensorRT 11 API: precision comes from the graph — an FP16 ONNX model or an
INT8 QDQ ONNX model; the weak-typing builder flags are gone). Needs an NVIDIA GPU, the
``tensorrt`` extra and ``cuda-python``; elsewhere it raises ``RuntimeUnavailableError`` saying why."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from lifecycle.runtimes.base import RuntimeUnavailableError
from lifecycle.runtimes.onnxruntime import graph_precision


def _import() -> tuple[Any, Any]:
    try:
        import tensorrt as trt
    except ImportError as exc:
        raise RuntimeUnavailableError(
            "TensorRT is not installed (pip install -e '.[tensorrt]' on a machine with an NVIDIA GPU)"
        ) from exc
    try:
        from cuda.bindings import runtime as cudart
    except ImportError:
        try:
            from cuda import cudart
        except ImportError as exc:
            raise RuntimeUnavailableError(
                "cuda-python is not installed (part of the tensorrt extra)"
            ) from exc
    err, count = cudart.cudaGetDeviceCount()
    if int(err) != 0 or count == 0:
        raise RuntimeUnavailableError("no NVIDIA GPU visible to CUDA on this machine")
    return trt, cudart


def build_engine(onnx_path: Path, *, max_batch: int = 64) -> bytes:
    """Parse ONNX and build a serialized engine with a dynamic batch profile (1 … ``max_batch``)."""
    import onnx

    trt, _ = _import()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_path.read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeUnavailableError(f"TensorRT could not parse {onnx_path.name}: {errors}")
    config = builder.create_builder_config()
    profile = builder.create_optimization_profile()
    model = onnx.load_model(str(onnx_path), load_external_data=False)
    graph_input = model.graph.input[0]
    features = graph_input.type.tensor_type.shape.dim[1].dim_value
    profile.set_shape(
        graph_input.name, (1, features), (max(1, max_batch // 2), features), (max_batch, features)
    )
    config.add_optimization_profile(profile)
    engine = builder.build_serialized_network(network, config)
    if engine is None:
        raise RuntimeUnavailableError("TensorRT failed to build an engine (see the TensorRT log)")
    return bytes(engine)


class TrtRunner:
    runtime = "tensorrt"

    def __init__(self, onnx_path: Path, *, max_batch: int = 64) -> None:
        import onnx

        trt, cudart = _import()
        self._trt, self._cudart = trt, cudart
        self.precision = graph_precision(onnx.load_model(str(onnx_path)))
        runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self._engine = runtime.deserialize_cuda_engine(build_engine(onnx_path, max_batch=max_batch))
        self._context = self._engine.create_execution_context()
        names = [self._engine.get_tensor_name(i) for i in range(self._engine.num_io_tensors)]
        self._input = next(n for n in names if self._engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT)
        self._output = next(n for n in names if self._engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT)
        self._max_batch = max_batch

    def _check(self, result: Any) -> Any:
        err = result[0] if isinstance(result, tuple) else result
        if int(err) != 0:
            raise RuntimeError(f"CUDA error {err}")
        return result[1] if isinstance(result, tuple) and len(result) > 1 else None

    def run(self, x: NDArray[np.float32]) -> NDArray[np.float32]:
        cudart = self._cudart
        x = np.ascontiguousarray(x, dtype=np.float32)
        self._context.set_input_shape(self._input, x.shape)
        out_shape = tuple(self._context.get_tensor_shape(self._output))
        out = np.empty(out_shape, dtype=np.float32)
        d_in = self._check(cudart.cudaMalloc(x.nbytes))
        d_out = self._check(cudart.cudaMalloc(out.nbytes))
        try:
            kind = cudart.cudaMemcpyKind
            self._check(cudart.cudaMemcpy(d_in, x.ctypes.data, x.nbytes, kind.cudaMemcpyHostToDevice))
            self._context.set_tensor_address(self._input, int(d_in))
            self._context.set_tensor_address(self._output, int(d_out))
            stream = self._check(cudart.cudaStreamCreate())
            self._context.execute_async_v3(stream)
            self._check(cudart.cudaStreamSynchronize(stream))
            self._check(cudart.cudaStreamDestroy(stream))
            self._check(cudart.cudaMemcpy(out.ctypes.data, d_out, out.nbytes, kind.cudaMemcpyDeviceToHost))
        finally:
            cudart.cudaFree(d_in)
            cudart.cudaFree(d_out)
        return out
