"""Optimization benchmark: every CPU recipe on the digits teacher, timed interleaved in one process
against two FP32 baselines (torch eager, and the strongest FP32 runtime: ONNX Runtime fully optimized
or OpenVINO f32, whichever is faster in this run), then the INT8 speed-up targets checked for the best
INT8 variant.

    .venv/bin/python -m benchmarks.optimize [--rounds 400] [--batch-rounds 40] [--example digits-teacher]

Uses an in-memory registry: it measures recipes and runtimes, not MLflow.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from benchmarks.common import rounded, write_results
from cli.optimize import table
from lifecycle.examples import get_example
from lifecycle.version_builder import package_torch_model
from optimize.cpu import cpu_summary
from optimize.recipes import DEFAULT_RECIPES
from optimize.run import optimize
from optimize.table import Row
from registry.memory import InMemoryModelRegistry, InMemoryRunTracker

TARGETS = {"speedup_b1": 4.0, "speedup_batch": 3.0, "size_ratio": 3.5, "max_drop_pt": 0.5}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--example", default="digits-teacher")
    parser.add_argument("--rounds", type=int, default=400)
    parser.add_argument("--batch-rounds", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    console = Console(width=200)

    example = get_example(args.example)
    data = example.load_data(args.seed)
    started = time.perf_counter()
    module, architecture, trained = example.train(data, args.seed)
    registry, tracker = InMemoryModelRegistry(), InMemoryRunTracker()
    registry.register(package_torch_model(args.example, module, data, architecture=architecture))
    console.print(f"{args.example}: trained in {trained.seconds:.1f} s; CPU: {cpu_summary()}")
    with tempfile.TemporaryDirectory() as tmp:
        report = optimize(
            registry, tracker, args.example, "1", Path(tmp), recipes=DEFAULT_RECIPES,
            rounds=args.rounds, batch_rounds=args.batch_rounds,
            progress=lambda msg: console.print(f"[dim]{time.perf_counter() - started:6.1f} s  {msg}[/]"),
        )  # fmt: skip
    console.print(
        table(
            report.rows,
            f"{args.example}: speed-ups against the fastest FP32 runtime (× b1, × b32) and torch eager",
            console.width,
        )
    )
    for row in report.rows:
        if row.reason:
            console.print(f"  {row.name} {row.status}: {escape(row.reason)}")
    summary = summarize(console, report.rows)
    console.print(f"optimization run: {report.seconds:.0f} s (training excluded)")
    figures: dict[str, Any] = {
        "train_s": rounded(trained.seconds, 1),
        "optimize_s": rounded(report.seconds, 1),
        "batch_size": report.rows[0].batch if report.rows else None,
        **summary,
        **{row.name: _row_figures(row) for row in report.rows},
    }
    console.print(f"wrote {write_results('optimize', figures)}")


def _row_figures(row: Row) -> dict[str, Any]:
    return {
        "kind": row.kind,
        "status": row.status,
        "precision": row.precision,
        "p50_ms": rounded(row.p50_ms),
        "p99_ms": rounded(row.p99_ms),
        "speedup_b1": rounded(row.speedup_b1),
        "speedup_batch": rounded(row.speedup_batch),
        "speedup_vs_torch_b1": rounded(row.speedup_vs_torch_b1),
        "size_mb": None if row.size_bytes is None else rounded(row.size_bytes / 1e6, 3),
        "metric": row.metric or None,
        "metric_value": rounded(row.value),
        "metric_delta": rounded(row.delta),
        "reason": row.reason or None,
    }


def summarize(console: Console, rows: list[Row]) -> dict[str, Any]:
    """Print the strongest FP32 runtime and the targets checked for the best INT8 variants; return
    them as figures."""
    baselines = [r for r in rows if r.kind == "baseline"]
    strongest = min(baselines, key=lambda r: r.p50_ms or float("inf"))
    fp32_size = strongest.size_bytes or 1
    int8 = [r for r in rows if r.kind == "variant" and r.precision == "int8" and r.p50_ms is not None]
    same_network = [r for r in int8 if not r.name.startswith("distill")]
    console.print(
        f"strongest FP32 runtime at batch 1 in this run: {strongest.name} ({strongest.p50_ms:.3f} ms)"
    )
    figures: dict[str, Any] = {
        "strongest_fp32": strongest.name,
        "strongest_fp32_p50_ms": rounded(strongest.p50_ms),
    }
    for key, label, pool in (
        ("best_int8_teacher", "best INT8 of the teacher itself", same_network),
        ("best_int8_overall", "best INT8 overall", int8),
    ):
        if not pool:
            continue
        best = max(pool, key=lambda r: r.speedup_b1 or 0)
        drop = -(best.delta or 0) * 100
        size_ratio = fp32_size / (best.size_bytes or 1)
        met = {
            "speedup_b1": (best.speedup_b1 or 0) >= TARGETS["speedup_b1"],
            "speedup_batch": (best.speedup_batch or 0) >= TARGETS["speedup_batch"],
            "size_ratio": size_ratio >= TARGETS["size_ratio"],
            "accuracy_drop": drop <= TARGETS["max_drop_pt"],
        }
        checks = {
            f"× b1 {best.speedup_b1:.2f} (≥ {TARGETS['speedup_b1']})": met["speedup_b1"],
            f"× b32 {best.speedup_batch:.2f} (≥ {TARGETS['speedup_batch']})": met["speedup_batch"],
            f"{size_ratio:.2f}× smaller (≥ {TARGETS['size_ratio']})": met["size_ratio"],
            f"accuracy drop {drop:+.2f} pt (≤ {TARGETS['max_drop_pt']})": met["accuracy_drop"],
            f"× torch eager b1 {best.speedup_vs_torch_b1:.2f}": True,
        }
        verdicts = "; ".join(f"{k} {'ok' if v else 'MISSED'}" for k, v in checks.items())
        console.print(f"{label}: [bold]{best.name}[/] — {verdicts}")
        figures[key] = {
            "name": best.name,
            "speedup_b1": rounded(best.speedup_b1),
            "speedup_batch": rounded(best.speedup_batch),
            "speedup_vs_torch_b1": rounded(best.speedup_vs_torch_b1),
            "size_ratio": rounded(size_ratio),
            "accuracy_drop_pt": rounded(drop, 3),
            **{f"goal_met_{k}": v for k, v in met.items()},
        }
    return figures


if __name__ == "__main__":
    main()
