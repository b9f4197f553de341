"""The optimization table (CLI, MLflow artifact) and the Pareto plot."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass
class Row:
    """One line of the table: a baseline or a variant."""

    name: str
    kind: str
    """``baseline`` or ``variant``."""
    runtime: str
    precision: str
    status: str
    """baseline, registered, rejected, skipped or failed."""
    size_bytes: int | None = None
    metric: str = ""
    """The task metric (accuracy, agreement, rmse, rmse_to_reference, cosine, map50,
    box_agreement, max_abs_error): labels decide between a task metric and fidelity."""
    value: float | None = None
    delta: float | None = None
    """``value`` minus the parent's, in the metric's unit."""
    fidelity: float | None = None
    """Agreement with the parent by the task's measure (top-1, cosine, boxes), where it has one."""
    max_abs_diff: float | None = None
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    throughput: float | None = None
    """Items per second at ``batch``."""
    batch: int = 32
    speedup_b1: float | None = None
    """Against the fastest FP32 baseline at batch 1."""
    speedup_batch: float | None = None
    speedup_vs_torch_b1: float | None = None
    memory_mb: float | None = None
    version: str | None = None
    run_id: str | None = None
    reason: str = ""
    notes: list[str] = field(default_factory=list)


COLUMNS = (
    "name", "runtime", "precision", "status", "size MB", "metric", "value", "Δ", "fidelity", "p50 ms", "p99 ms",
    "items/s batch", "× b1", "× batch", "× torch b1", "version",
)  # fmt: skip
FRACTIONS = ("accuracy", "agreement", "map50", "box_agreement")
"""Metrics in [0, 1] whose change reads best in points."""


def delta_text(row: Row) -> str:
    if row.delta is None:
        return "–"
    if row.metric in FRACTIONS:
        return f"{row.delta * 100:+.2f} pt"
    return f"{row.delta:+.3g}"


def _f(value: float | None, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def cells(row: Row) -> list[str]:
    return [
        row.name,
        row.runtime,
        row.precision,
        row.status,
        "–" if row.size_bytes is None else f"{row.size_bytes / 1e6:.2f}",
        row.metric or "–",
        _f(row.value, ".4g" if row.metric not in FRACTIONS else ".4f"),
        delta_text(row),
        _f(row.fidelity, ".3f"),
        _f(row.p50_ms, ".3f"),
        _f(row.p99_ms, ".3f"),
        _f(row.throughput, ".0f"),
        _f(row.speedup_b1, ".2f"),
        _f(row.speedup_batch, ".2f"),
        _f(row.speedup_vs_torch_b1, ".2f"),
        row.version or "",
    ]


def markdown(rows: list[Row]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(cells(r)) + " |" for r in rows]
    reasons = [f"- **{r.name}** ({r.status}): {r.reason}" for r in rows if r.reason]
    notes = [f"- **{r.name}**: {n}" for r in rows for n in r.notes]
    return "\n".join([*lines, *(["", *reasons] if reasons else []), *(["", *notes] if notes else [])]) + "\n"


def write_json(rows: list[Row], path: Path) -> None:
    path.write_text(json.dumps([asdict(r) for r in rows], indent=2))


def pareto_plot(rows: list[Row], path: Path, title: str) -> None:
    """Task metric × batch-1 p50 latency; marker area ∝ artifact size; the Pareto front is drawn
    (towards the better direction of the metric)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = [(r, r.p50_ms, r.value) for r in rows if r.p50_ms is not None and r.value is not None]
    metric = points[0][0].metric if points else "accuracy"
    sign = -1.0 if metric in ("rmse", "rmse_to_reference", "max_abs_error") else 1.0
    scale = 100.0 if metric in FRACTIONS else 1.0
    fig, ax = plt.subplots(figsize=(8, 5.5), dpi=110)
    colors = {"baseline": "tab:gray", "registered": "tab:green", "rejected": "tab:red"}
    biggest = max((r.size_bytes or 1) for r, _, _ in points) if points else 1
    for r, latency, acc in points:
        size = 40 + 600 * (r.size_bytes or 0) / biggest
        ax.scatter(latency, acc * scale, s=size, alpha=0.6, color=colors.get(r.status, "tab:blue"))
        ax.annotate(r.name, (latency, acc * scale), fontsize=7, xytext=(4, 4), textcoords="offset points")
    front: list[tuple[float, float]] = []
    best = -float("inf")
    for _, latency, acc in sorted(points, key=lambda p: (p[1], -sign * p[2])):
        if sign * acc > best:
            front.append((latency, acc * scale))
            best = sign * acc
    if len(front) > 1:
        ax.plot([f[0] for f in front], [f[1] for f in front], "--", color="black", lw=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("batch-1 p50 latency (ms, log)")
    ax.set_ylabel(f"test {metric}" + (" (%)" if scale == 100.0 else ""))
    ax.set_title(title + "\n(gray: baselines, green: registered, red: rejected; area ∝ size)", fontsize=9)
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
