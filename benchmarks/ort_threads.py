"""ONNX Runtime intra-op thread spinning, as a server at concurrency 1 sees it: calls with an idle gap
between them (the time a request spends outside the model), and back-to-back calls (a tight loop, the
"raw" figure of ``benchmarks.serving``). Three session settings, interleaved in one process:

- spinning off (``allow_spinning=0``): pool threads sleep between operators and between runs;
- spinning on (ONNX Runtime's default): they spin between operators and after a run;
- spinning on while a run lasts, stopped when it returns (``force_spinning_stop=1``; what
  :func:`lifecycle.runtimes.onnxruntime.session_options` sets).

p50 latency and process CPU per call (all threads). Timing needs no trained weights: the example's
architecture is exported untrained.

    .venv/bin/python -m benchmarks.ort_threads [--example digits-teacher] [--calls 600] [--gap-ms 2] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray
from rich.console import Console
from rich.table import Table

from benchmarks.common import rounded, write_results
from lifecycle.examples import get_example
from lifecycle.export import export_onnx
from lifecycle.runtimes.onnxruntime import session_options

SETTINGS: dict[str, dict[str, str]] = {
    "spinning off": {"session.intra_op.allow_spinning": "0", "session.force_spinning_stop": "0"},
    "spinning on (ORT default)": {"session.intra_op.allow_spinning": "1", "session.force_spinning_stop": "0"},
    "spinning during a run only (ours)": {},  # session_options() as the runners use it
}
KEYS = {
    "spinning off": "spinning_off",
    "spinning on (ORT default)": "spinning_on",
    "spinning during a run only (ours)": "spinning_run_only",
}
"""The settings' keys in the results file."""


def _session(model: bytes, entries: dict[str, str]) -> ort.InferenceSession:
    options = session_options()
    for key, value in entries.items():  # a later entry for a key replaces the earlier one
        options.add_session_config_entry(key, value)
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def _measure(
    session: ort.InferenceSession, x: NDArray[np.float32], calls: int, gap_s: float
) -> tuple[float, float]:
    name = session.get_inputs()[0].name
    out = []
    cpu = time.process_time()
    for _ in range(calls):
        if gap_s:
            time.sleep(gap_s)
        start = time.perf_counter()
        session.run(None, {name: x})
        out.append(time.perf_counter() - start)
    return statistics.median(out) * 1e3, (time.process_time() - cpu) / calls * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--example", default="digits-teacher")
    parser.add_argument("--calls", type=int, default=600)
    parser.add_argument("--gap-ms", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    example = get_example(args.example)
    data = example.load_data(0)
    module, _ = example.build(data)
    x = data.x_test[:1]
    model = export_onnx(module.eval(), x)
    sessions = {name: _session(model, entries) for name, entries in SETTINGS.items()}
    results: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for r in range(args.rounds):
        order = list(sessions) if r % 2 == 0 else list(reversed(sessions))
        for name in order:
            for mode, gap in (("tight", 0.0), ("gap", args.gap_ms / 1e3)):
                results.setdefault((name, mode), []).append(_measure(sessions[name], x, args.calls, gap))
    table = Table(title=f"ONNX Runtime on {args.example}, 1 row, medians of {args.rounds} interleaved rounds")
    for column in ("intra-op threads", "p50 tight (ms)", "CPU/call tight (ms)",
                   f"p50, {args.gap_ms:g} ms gaps", f"CPU/call, {args.gap_ms:g} ms gaps"):  # fmt: skip
        table.add_column(column, justify="left" if column == "intra-op threads" else "right")
    figures: dict[str, Any] = {"gap_ms": args.gap_ms, "calls_per_round": args.calls}
    for name in sessions:
        tight, gap = results[(name, "tight")], results[(name, "gap")]
        medians = {
            f"{what}_{mode}_ms": statistics.median(v[i] for v in runs)
            for mode, runs in (("tight", tight), ("gap", gap))
            for what, i in (("p50", 0), ("cpu_per_call", 1))
        }
        table.add_row(name, *(f"{v:.3f}" for v in medians.values()))
        figures[KEYS[name]] = {k: rounded(v) for k, v in medians.items()}
    console = Console(width=160)
    console.print(table)
    console.print(f"wrote {write_results('ort_threads', figures)}")


if __name__ == "__main__":
    main()
