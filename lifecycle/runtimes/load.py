"""Load model files into the runtime adapter that executes them (shared by optimization and serving)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from lifecycle.local_version import LocalVersion
from lifecycle.runtimes.base import Runner, RuntimeUnavailableError, class_logits


def load_runner(
    files: dict[str, Path],
    runtime: str,
    *,
    inference_precision: str | None = None,
    threads: int = 0,
    item_shapes: Mapping[str, tuple[int, ...]] | None = None,
) -> Runner:
    """``files``: ``{"model.onnx": path}`` or ``{"model.xml": ..., "model.bin": ...}``;
    ``item_shapes``: one item's shape per input, for engines built ahead of time (TensorRT) of
    inputs whose non-batch sizes are dynamic."""
    if runtime == "onnxruntime":
        from lifecycle.runtimes.onnxruntime import OrtRunner  # each runtime's library loads on use

        return OrtRunner(files["model.onnx"], threads=threads)
    if runtime == "openvino":
        from lifecycle.runtimes.openvino import OvRunner  # OpenVINO loads on use

        return OvRunner(files["model.xml"], inference_precision=inference_precision or "f32", threads=threads)
    if runtime == "tensorrt":
        from lifecycle.runtimes.tensorrt import TrtRunner  # TensorRT and CUDA load on use

        return TrtRunner(files["model.onnx"], item_shapes=item_shapes)
    raise RuntimeUnavailableError(f"no runtime adapter for {runtime!r}")


def runtime_of(local: LocalVersion, tags: dict[str, str]) -> tuple[str, str | None]:
    """The runtime a registered version runs on, and its inference precision hint (from its tags)."""
    default = "openvino" if local.format == "openvino" else "onnxruntime"
    return tags.get("lifecycle.runtime", default), tags.get("lifecycle.inference_precision_hint")


def load_version(local: LocalVersion, tags: dict[str, str], *, threads: int = 0) -> Runner:
    """Load a downloaded (and verified) registered version with the runtime its tags name; a
    classifier's ``run`` answers its class logits (:func:`lifecycle.runtimes.base.class_logits`)."""
    runtime, precision = runtime_of(local, tags)
    runner = load_runner(local.model_paths, runtime, inference_precision=precision, threads=threads)
    return class_logits(runner, local.contract)
