"""Rich tables for registry listings."""

from __future__ import annotations

from rich.table import Table

from lifecycle.db.alias_history import AliasInterval
from registry.abc import ModelVersion


def _fmt(value: float | None, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def _metric(v: ModelVersion) -> str:
    """The task metric the version is judged by (registered: ``test_<metric>``; optimized variants
    log it under its own name)."""
    name = v.tags.get("lifecycle.metric", "accuracy")
    value = v.metrics.get(f"test_{name}", v.metrics.get(name))
    return "–" if value is None else f"{name} {value:.4g}"


def versions_table(name: str, versions: list[ModelVersion]) -> Table:
    table = Table(title=f"{name}", title_justify="left")
    for column in ("version", "aliases", "role", "recipe", "parent", "format", "precision"):
        table.add_column(column)
    for column in ("test metric", "params", "size", "created (UTC)"):
        table.add_column(column, justify="right")
    for v in versions:
        size = v.metrics.get("onnx_size_bytes")
        params = v.metrics.get("parameter_count")
        table.add_row(
            v.version,
            ", ".join(v.aliases) or "",
            v.tags.get("lifecycle.role", ""),
            v.tags.get("lifecycle.recipe", ""),
            v.tags.get("lifecycle.parent_version", ""),
            v.tags.get("lifecycle.format", ""),
            v.tags.get("lifecycle.precision", ""),
            _metric(v),
            "–" if params is None else f"{int(params):,}",
            "–" if size is None else f"{size / 1e6:.2f} MB",
            v.created_at.strftime("%Y-%m-%d %H:%M:%S") if v.created_at else "",
        )
    return table


def history_table(name: str, intervals: list[AliasInterval]) -> Table:
    table = Table(title=f"alias history of {name}", title_justify="left")
    for column in ("alias", "version", "from (UTC)", "set by", "until (UTC)", "cleared by"):
        table.add_column(column)
    for i in intervals:
        table.add_row(
            i.alias,
            i.version,
            i.set_at.strftime("%Y-%m-%d %H:%M:%S"),
            i.set_by,
            i.cleared_at.strftime("%Y-%m-%d %H:%M:%S") if i.cleared_at else "current",
            i.cleared_by or "",
        )
    return table
