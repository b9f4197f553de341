"""Tables that read well in any terminal: a table when every cell fits the width whole, otherwise
one block per row (label: value), so that no name or figure is ever cut to ``o…``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.cells import cell_len
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from lifecycle.db.alias_history import AliasInterval
from registry.abc import ModelVersion


@dataclass(frozen=True)
class Column:
    header: str
    right: bool = False


def fitted(
    title: str,
    columns: Sequence[Column],
    rows: Sequence[Sequence[str]],
    width: int,
    styles: Sequence[str | None] | None = None,
) -> RenderableType:
    """A table when it fits ``width`` with every cell whole; otherwise a vertical layout: one block
    per row headed by its first cell, then ``column: value`` for every non-empty cell."""
    styles = list(styles) if styles is not None else [None] * len(rows)
    natural = [max([cell_len(c.header), *(cell_len(r[i]) for r in rows)]) for i, c in enumerate(columns)]
    if sum(natural) + 3 * len(columns) + 1 <= width:  # a rich box: "│ " before, " " after each cell
        table = Table(title=title, title_justify="left")
        for column in columns:
            table.add_column(column.header, justify="right" if column.right else "left", no_wrap=True)
        for row, style in zip(rows, styles, strict=True):
            table.add_row(*row, style=style)
        return table
    blocks: list[RenderableType] = [Text(title, style="italic")]
    for row, style in zip(rows, styles, strict=True):
        blocks.append(Text(f"{columns[0].header} {row[0]}", style=f"bold {style or ''}".strip()))
        pairs = [f"{c.header} {v}" for c, v in zip(columns[1:], row[1:], strict=True) if v and v != "–"]
        line = ""
        for pair in pairs:  # pack "header value" pairs into lines, never splitting one
            if line and cell_len(line) + 3 + cell_len(pair) > width - 2:
                blocks.append(Text(f"  {line}", style=style or ""))
                line = ""
            line = f"{line} · {pair}" if line else pair
        if line:
            blocks.append(Text(f"  {line}", style=style or ""))
    return Group(*blocks)


def _metric(v: ModelVersion) -> str:
    """The task metric the version is judged by (registered: ``test_<metric>``; optimized variants
    log it under its own name)."""
    name = v.tags.get("lifecycle.metric", "accuracy")
    value = v.metrics.get(f"test_{name}", v.metrics.get(name))
    return "–" if value is None else f"{name} {value:.4g}"


VERSION_COLUMNS = (
    Column("version"), Column("aliases"), Column("role"), Column("recipe"), Column("parent"), Column("format"),
    Column("precision"), Column("test metric", right=True), Column("params", right=True),
    Column("size", right=True), Column("created (UTC)", right=True),
)  # fmt: skip


def versions_table(name: str, versions: list[ModelVersion], width: int) -> RenderableType:
    rows = []
    for v in versions:
        size = v.metrics.get("onnx_size_bytes")
        params = v.metrics.get("parameter_count")
        rows.append(
            [
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
            ]
        )
    return fitted(name, VERSION_COLUMNS, rows, width)


HISTORY_COLUMNS = tuple(
    Column(c) for c in ("alias", "version", "from (UTC)", "set by", "until (UTC)", "cleared by")
)


def history_table(name: str, intervals: list[AliasInterval], width: int) -> RenderableType:
    rows = [
        [
            i.alias,
            i.version,
            i.set_at.strftime("%Y-%m-%d %H:%M:%S"),
            i.set_by,
            i.cleared_at.strftime("%Y-%m-%d %H:%M:%S") if i.cleared_at else "current",
            i.cleared_by or "",
        ]
        for i in intervals
    ]
    return fitted(f"alias history of {name}", HISTORY_COLUMNS, rows, width)
