"""The runtime interface: load a variant artifact, run it, say what precision actually executed."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from lifecycle.errors import LifecycleError
from lifecycle.tensors import batch_size as batch_size_of
from lifecycle.tensors import concat, take


class RuntimeUnavailableError(LifecycleError):
    """The runtime (or the hardware it needs) is not present on this machine; the message says why."""


@runtime_checkable
class Runner(Protocol):
    """A loaded model. ``run`` takes ``[batch, n_features]`` float32 and returns float32 logits."""

    @property
    def runtime(self) -> str:
        """``torch``, ``onnxruntime``, ``openvino`` or ``tensorrt``."""

    @property
    def precision(self) -> str:
        """The precision that executes (``fp32``, ``fp16``, ``bf16``, ``int8``), read from the runtime
        or the graph, not the one requested."""

    def run(self, x: NDArray[np.float32]) -> NDArray[np.float32]: ...


@runtime_checkable
class NamedRunner(Protocol):
    """A loaded model that takes and returns named tensors of any dtype."""

    def run_named(self, feeds: Mapping[str, NDArray[Any]]) -> dict[str, NDArray[Any]]: ...


def run_named_batched(
    runner: NamedRunner, inputs: Mapping[str, NDArray[Any]], batch_size: int = 32
) -> dict[str, NDArray[Any]]:
    """All outputs on all items, ``batch_size`` items per call."""
    n = batch_size_of(inputs)
    parts = [runner.run_named(take(inputs, slice(i, i + batch_size))) for i in range(0, n, batch_size)]
    return concat(parts)


def run_batched(runner: Runner, x: NDArray[np.float32], batch_size: int = 256) -> NDArray[np.float32]:
    return np.concatenate([runner.run(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])
