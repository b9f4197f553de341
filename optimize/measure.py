"""Speed of runners, timed interleaved: each round runs every runner once, in a fresh
random order, so that a noisy neighbour slows all of them alike and ratios stay meaningful.

The order is shuffled rather than rotated because a runtime can slow down whichever runs right
after it (OpenVINO's worker threads keep spinning briefly after returning): with a fixed rotation,
one runner would always pay for the same predecessor.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from lifecycle.runtimes.base import NamedRunner
from lifecycle.tensors import batch_size


@dataclass(frozen=True)
class Timing:
    p50_ms: float
    p95_ms: float
    p99_ms: float
    """Latency percentiles at batch 1."""
    batch: int
    batch_p50_ms: float
    throughput: float
    """Inputs per second at ``batch``, from the median batch time."""
    rounds: int
    samples_ms: tuple[float, ...] = ()
    """Batch-1 latencies in round order, for paired comparisons."""

    def paired_ratio(self, other: Timing) -> float:
        """Median over rounds of this latency / ``other``'s in the same round: drift over the run
        (a noisy neighbour, frequency changes) cancels out of each pair."""
        pairs = np.array(self.samples_ms) / np.array(other.samples_ms)
        return float(np.median(pairs))


def batch_of(inputs: Mapping[str, NDArray[Any]], batch: int) -> dict[str, NDArray[Any]]:
    """``batch`` items of every input (repeating the given items when there are fewer)."""
    n = batch_size(inputs)
    index = np.arange(batch) % n
    return {name: np.ascontiguousarray(arr[index]) for name, arr in inputs.items()}


def time_interleaved(
    runners: Mapping[str, NamedRunner],
    inputs: Mapping[str, NDArray[Any]],
    *,
    rounds: int = 200,
    batch: int = 32,
    batch_rounds: int = 20,
    warmup: int = 5,
    seed: int = 0,
) -> dict[str, Timing]:
    """Batch-1 and batch-``batch`` latencies of every runner on the same named inputs (their
    non-batch sizes are the contract's shapes as the data gives them: 3×224×224, sequence 128 …)."""
    names = list(runners)
    one = batch_of(inputs, 1)
    many = batch_of(inputs, batch)
    for name in names:
        for _ in range(warmup):
            runners[name].run_named(one)
        runners[name].run_named(many)
    single: dict[str, list[float]] = {n: [] for n in names}
    batched: dict[str, list[float]] = {n: [] for n in names}
    rng = np.random.default_rng(seed)
    for r in range(max(rounds, batch_rounds)):
        for name in (names[i] for i in rng.permutation(len(names))):
            if r < rounds:
                start = time.perf_counter()
                runners[name].run_named(one)
                single[name].append(time.perf_counter() - start)
            if r < batch_rounds:
                start = time.perf_counter()
                runners[name].run_named(many)
                batched[name].append(time.perf_counter() - start)
    out = {}
    for name in names:
        s = np.array(single[name]) * 1e3
        b = float(np.median(batched[name])) * 1e3
        out[name] = Timing(
            p50_ms=float(np.percentile(s, 50)),
            p95_ms=float(np.percentile(s, 95)),
            p99_ms=float(np.percentile(s, 99)),
            batch=batch,
            batch_p50_ms=b,
            throughput=batch / (b / 1e3),
            rounds=rounds,
            samples_ms=tuple(float(v) for v in s),
        )
    return out
