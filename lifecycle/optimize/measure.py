"""Quality and speed of runners, timed interleaved: each round runs every runner once, in a fresh
random order, so that a noisy neighbour slows all of them alike and ratios stay meaningful.

The order is shuffled rather than rotated because a runtime can slow down whichever runs right
after it (OpenVINO's worker threads keep spinning briefly after returning): with a fixed rotation,
one runner would always pay for the same predecessor.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from lifecycle.runtimes.base import Runner
from lifecycle.training import accuracy


@dataclass(frozen=True)
class Quality:
    accuracy: float
    accuracy_delta: float
    """Accuracy minus the parent's, in fractions (−0.004 = −0.4 pt)."""
    agreement: float
    """Share of test inputs where top-1 equals the parent's."""
    max_abs_diff: float
    """Largest logit difference from the parent."""


def quality(logits: NDArray[np.float32], parent_logits: NDArray[np.float32], y: NDArray[np.int64]) -> Quality:
    own, parent = accuracy(logits, y), accuracy(parent_logits, y)
    return Quality(
        accuracy=own,
        accuracy_delta=own - parent,
        agreement=float((logits.argmax(1) == parent_logits.argmax(1)).mean()),
        max_abs_diff=float(np.abs(logits - parent_logits).max()),
    )


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


def time_interleaved(
    runners: dict[str, Runner],
    x: NDArray[np.float32],
    *,
    rounds: int = 200,
    batch: int = 32,
    batch_rounds: int = 20,
    warmup: int = 5,
    seed: int = 0,
) -> dict[str, Timing]:
    names = list(runners)
    one = x[:1]
    many = np.resize(x, (batch, x.shape[1])).astype(np.float32)
    for name in names:
        for _ in range(warmup):
            runners[name].run(one)
        runners[name].run(many)
    single: dict[str, list[float]] = {n: [] for n in names}
    batched: dict[str, list[float]] = {n: [] for n in names}
    rng = np.random.default_rng(seed)
    for r in range(max(rounds, batch_rounds)):
        for name in (names[i] for i in rng.permutation(len(names))):
            if r < rounds:
                start = time.perf_counter()
                runners[name].run(one)
                single[name].append(time.perf_counter() - start)
            if r < batch_rounds:
                start = time.perf_counter()
                runners[name].run(many)
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
