"""The runtime interface: load a variant artifact, run it, say what precision actually executed."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from lifecycle.contract import ModelContract
from lifecycle.errors import LifecycleError
from lifecycle.tensors import batch_size as batch_size_of
from lifecycle.tensors import concat, take


class RuntimeUnavailableError(LifecycleError):
    """The runtime (or the hardware it needs) is not present on this machine; the message says why."""


@runtime_checkable
class Runner(Protocol):
    """A loaded model. ``run_named`` takes and returns named tensors of any model; ``run`` is the
    one-input, one-output shortcut that the tabular serving path uses (float32 rows in, float32 out)."""

    @property
    def runtime(self) -> str:
        """``torch``, ``onnxruntime``, ``openvino`` or ``tensorrt``."""

    @property
    def precision(self) -> str:
        """The precision that executes (``fp32``, ``fp16``, ``bf16``, ``int8``), read from the runtime
        or the graph, not the one requested."""

    def run(self, x: NDArray[np.float32]) -> NDArray[np.float32]: ...

    def run_named(self, feeds: Mapping[str, NDArray[Any]]) -> dict[str, NDArray[Any]]:
        """Every output by name, for named inputs of the contract's dtypes."""


@runtime_checkable
class NamedRunner(Protocol):
    """A loaded model that takes and returns named tensors of any dtype."""

    def run_named(self, feeds: Mapping[str, NDArray[Any]]) -> dict[str, NDArray[Any]]: ...


MAX_BATCH_ITEMS = 256
MAX_BATCH_BYTES = 64 * 2**20


def run_named_batched(
    runner: NamedRunner, inputs: Mapping[str, NDArray[Any]], batch_size: int | None = None
) -> dict[str, NDArray[Any]]:
    """All outputs on all items, ``batch_size`` items per call; by default as many as fit in 64 MiB
    of input, at most 256 (dynamically quantized models scale activations per call, so the same
    items in other batches give slightly different answers: keep batches the same everywhere)."""
    n = batch_size_of(inputs)
    if batch_size is None:
        per_item = sum(arr[:1].nbytes for arr in inputs.values()) or 1
        batch_size = max(1, min(MAX_BATCH_ITEMS, MAX_BATCH_BYTES // per_item))
    parts = [runner.run_named(take(inputs, slice(i, i + batch_size))) for i in range(0, n, batch_size)]
    return concat(parts)


def run_batched(runner: Runner, x: NDArray[np.float32], batch_size: int = 256) -> NDArray[np.float32]:
    return np.concatenate([runner.run(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])


class ClassLogits:
    """A classifier's runner whose ``run`` answers the contract's class scores as logits: its
    primary output (a scikit-learn graph answers ``label`` first, ``probabilities`` second), and
    log-probabilities where the graph ends in a softmax (``softmax(log p) = p``), so that every
    consumer of ``run`` — serving, the drift monitor, distillation — reads one kind of score."""

    def __init__(self, runner: Runner, input_name: str, output_name: str, *, probabilities: bool) -> None:
        self.inner = runner
        self.input_name = input_name
        self.output_name = output_name
        self.probabilities = probabilities

    @property
    def runtime(self) -> str:
        return self.inner.runtime

    @property
    def precision(self) -> str:
        return self.inner.precision

    def run(self, x: NDArray[np.float32]) -> NDArray[np.float32]:
        scores = np.asarray(self.inner.run_named({self.input_name: x})[self.output_name], dtype=np.float32)
        return np.log(np.clip(scores, 1e-12, None)) if self.probabilities else scores

    def run_named(self, feeds: Mapping[str, NDArray[Any]]) -> dict[str, NDArray[Any]]:
        return self.inner.run_named(feeds)


def class_logits(runner: Runner, contract: ModelContract) -> Runner:
    """``runner`` whose ``run`` answers class logits (see :class:`ClassLogits`); the runner itself
    where its first output already is the logits (the serving path pays nothing)."""
    if contract.task != "classification" or len(contract.inputs) != 1:
        return runner
    first = contract.outputs[0].name
    if contract.primary_output == first and contract.scores == "logits":
        return runner
    return ClassLogits(
        runner,
        contract.inputs[0].name,
        contract.primary_output,
        probabilities=contract.scores == "probabilities",
    )
