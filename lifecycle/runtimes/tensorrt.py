"""TensorRT adapter (TensorRT 11 API: precision comes from the graph — an FP16 ONNX model or an
INT8 QDQ ONNX model; the weak-typing builder flags are gone). Needs an NVIDIA GPU, the
``tensorrt`` extra and ``cuda-python``; elsewhere it raises ``RuntimeUnavailableError`` saying why."""

from __future__ import annotations

from collections.abc import Mapping
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


def build_engine(
    onnx_path: Path, *, max_batch: int = 64, item_shapes: Mapping[str, tuple[int, ...]] | None = None
) -> bytes:
    """Parse ONNX and build a serialized engine with a dynamic batch profile (1 … ``max_batch``) for
    every input; dynamic non-batch sizes are taken from ``item_shapes`` (one item's shape per input,
    e.g. the contract's 3×224×224 or a sequence of 128), fixed sizes from the graph."""
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
    for i in range(network.num_inputs):
        tensor = network.get_input(i)
        dims = tuple(int(d) for d in tensor.shape)[1:]
        given = (item_shapes or {}).get(tensor.name)
        if any(d < 0 for d in dims) and given is None:
            raise RuntimeUnavailableError(
                f"input {tensor.name!r} has dynamic sizes {dims}: give one item's shape to build the profile"
            )
        item = tuple(d if d > 0 else int(g) for d, g in zip(dims, given or dims, strict=True))
        profile.set_shape(tensor.name, (1, *item), (max(1, max_batch // 2), *item), (max_batch, *item))
    config.add_optimization_profile(profile)
    engine = builder.build_serialized_network(network, config)
    if engine is None:
        raise RuntimeUnavailableError("TensorRT failed to build an engine (see the TensorRT log)")
    return bytes(engine)


class TrtRunner:
    runtime = "tensorrt"

    def __init__(
        self,
        onnx_path: Path,
        *,
        max_batch: int = 64,
        item_shapes: Mapping[str, tuple[int, ...]] | None = None,
    ) -> None:
        import onnx

        trt, cudart = _import()
        self._trt, self._cudart = trt, cudart
        self.precision = graph_precision(onnx.load_model(str(onnx_path)))
        runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        engine = build_engine(onnx_path, max_batch=max_batch, item_shapes=item_shapes)
        self._engine = runtime.deserialize_cuda_engine(engine)
        self._context = self._engine.create_execution_context()
        names = [self._engine.get_tensor_name(i) for i in range(self._engine.num_io_tensors)]
        mode = trt.TensorIOMode
        self.input_names = [n for n in names if self._engine.get_tensor_mode(n) == mode.INPUT]
        self.output_names = [n for n in names if self._engine.get_tensor_mode(n) == mode.OUTPUT]
        self._max_batch = max_batch

    def _check(self, result: Any) -> Any:
        err = result[0] if isinstance(result, tuple) else result
        if int(err) != 0:
            raise RuntimeError(f"CUDA error {err}")
        return result[1] if isinstance(result, tuple) and len(result) > 1 else None

    def run(self, x: NDArray[np.float32]) -> NDArray[np.float32]:
        out = self.run_named({self.input_names[0]: np.ascontiguousarray(x, dtype=np.float32)})
        return np.asarray(out[self.output_names[0]], dtype=np.float32)

    def run_named(self, feeds: Mapping[str, NDArray[Any]]) -> dict[str, NDArray[Any]]:
        cudart, trt = self._cudart, self._trt
        kind = cudart.cudaMemcpyKind
        buffers: list[Any] = []
        try:
            for name in self.input_names:
                arr = np.ascontiguousarray(feeds[name], dtype=trt.nptype(self._engine.get_tensor_dtype(name)))
                self._context.set_input_shape(name, arr.shape)
                device = self._check(cudart.cudaMalloc(max(arr.nbytes, 1)))
                buffers.append(device)
                self._check(
                    cudart.cudaMemcpy(device, arr.ctypes.data, arr.nbytes, kind.cudaMemcpyHostToDevice)
                )
                self._context.set_tensor_address(name, int(device))
            outputs: dict[str, NDArray[Any]] = {}
            for name in self.output_names:
                shape = tuple(self._context.get_tensor_shape(name))
                outputs[name] = np.empty(shape, dtype=trt.nptype(self._engine.get_tensor_dtype(name)))
                device = self._check(cudart.cudaMalloc(max(outputs[name].nbytes, 1)))
                buffers.append(device)
                self._context.set_tensor_address(name, int(device))
            stream = self._check(cudart.cudaStreamCreate())
            self._context.execute_async_v3(stream)
            self._check(cudart.cudaStreamSynchronize(stream))
            self._check(cudart.cudaStreamDestroy(stream))
            for name, arr in outputs.items():
                address = int(self._context.get_tensor_address(name))
                self._check(
                    cudart.cudaMemcpy(arr.ctypes.data, address, arr.nbytes, kind.cudaMemcpyDeviceToHost)
                )
        finally:
            for device in buffers:
                cudart.cudaFree(device)
        return outputs
