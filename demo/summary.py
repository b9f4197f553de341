"""What the demo prints about its results: verdict lines and the summary tables."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rich.table import Table

from monitoring.shifts import Shift

SHIFT = Shift("image", "medium", 1.0)


@dataclass
class Summary:
    timings: list[tuple[str, float]] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)
    """Role in the story → version."""
    accuracy: dict[str, tuple[float, float]] = field(default_factory=dict)
    """Version → (clean, shifted) test accuracy."""
    links: dict[str, str] = field(default_factory=dict)
    traffic: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


def verdict_line(v: dict[str, Any]) -> str:
    parts = [
        f"{c['name']} {c['value']:.3g}{' ✓' if c.get('passed') else ' ✗'}"
        for c in v.get("checks") or []
        if isinstance(c, dict) and isinstance(c.get("value"), int | float) and c.get("passed") is not None
    ]
    return f"{v.get('outcome', '')} → {v.get('decision', '')} ({', '.join(parts) or 'too few samples'})"


def summary_tables(summary: Summary) -> list[Table]:
    timings = Table(title="where the time went", title_justify="left")
    timings.add_column("step")
    timings.add_column("seconds", justify="right")
    for title, seconds in summary.timings:
        timings.add_row(title, f"{seconds:.1f}")
    timings.add_row("[bold]whole tour", f"[bold]{summary.seconds:.1f}")
    acc = Table(title=f"accuracy on the digits test split, clean and shifted ({SHIFT})", title_justify="left")
    for column in ("model", "version", "clean", "shifted"):
        acc.add_column(column, justify="left" if column == "model" else "right")
    for role, version in summary.versions.items():
        clean, shifted = summary.accuracy.get(version, (float("nan"), float("nan")))
        acc.add_row(role, version, f"{clean:.4f}", f"{shifted:.4f}")
    return [timings, acc]
