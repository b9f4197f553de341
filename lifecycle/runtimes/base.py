"""The runtime interface: load a variant artifact, run it, say what precision actually executed."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from lifecycle.errors import LifecycleError


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


def run_batched(runner: Runner, x: NDArray[np.float32], batch_size: int = 256) -> NDArray[np.float32]:
    return np.concatenate([runner.run(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])
