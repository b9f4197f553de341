"""The CLI's wide tables stay readable in an 80-column terminal (or a pipe): every name and figure
whole, never cut to ``o…``; a wide terminal still gets one table."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest
from rich.console import Console

from cli.optimize import table
from cli.render import versions_table
from optimize.table import Row, cells
from registry.abc import ModelVersion

VARIANTS = [
    Row("onnxruntime-fp32", "baseline", "onnxruntime", "fp32", "baseline", 4_812_345, "accuracy", 0.99444,
        p50_ms=0.412, p99_ms=0.913, throughput=21_345.0, speedup_b1=1.0, speedup_batch=1.0, speedup_vs_torch_b1=3.71),
    Row("ort-int8-static", "variant", "onnxruntime", "int8", "registered", 1_234_567, "accuracy", 0.99167,
        delta=-0.00277, fidelity=0.9944, p50_ms=0.251, p99_ms=0.633, throughput=40_123.0, speedup_b1=1.64,
        speedup_batch=1.88, speedup_vs_torch_b1=6.08, version="2"),
    Row("distill+ort-int8-static", "variant", "onnxruntime", "int8", "rejected", 345_678, "accuracy", 0.97222,
        delta=-0.02222, fidelity=0.9722, p50_ms=0.101, p99_ms=0.287, throughput=99_876.0, speedup_b1=4.08,
        speedup_batch=4.71, speedup_vs_torch_b1=15.1),
    Row("openvino-nncf-int8", "variant", "openvino", "int8", "skipped", metric="accuracy"),
]  # fmt: skip
CREATED = datetime(2026, 12, 7, 20, 1, 2, tzinfo=UTC)
VERSIONS = [
    ModelVersion("digits", "1", ("champion",), {"lifecycle.role": "teacher", "lifecycle.recipe": "train",
                 "lifecycle.format": "onnx", "lifecycle.precision": "fp32", "lifecycle.metric": "accuracy"},
                 {"test_accuracy": 0.99444, "parameter_count": 1_234_567, "onnx_size_bytes": 4_812_345}, created_at=CREATED),
    ModelVersion("digits", "3", ("challenger",), {"lifecycle.role": "student", "lifecycle.recipe": "distill+ort-int8-static",
                 "lifecycle.parent_version": "1", "lifecycle.format": "onnx", "lifecycle.precision": "int8",
                 "lifecycle.metric": "accuracy"}, {"accuracy": 0.97222, "onnx_size_bytes": 345_678}, created_at=CREATED),
]  # fmt: skip


def _render(renderable: object, width: int) -> str:
    console = Console(width=width, file=io.StringIO(), color_system=None)
    console.print(renderable)
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert all(len(line) <= width for line in text.splitlines()), text
    return text


@pytest.mark.parametrize("width", [80, 60])
def test_the_variant_table_keeps_every_name_and_figure_whole(width: int) -> None:
    text = _render(table(VARIANTS, "digits v1: variants", width), width)
    assert "…" not in text
    for row in VARIANTS:
        for cell in cells(row):
            if cell in ("", "–"):  # nothing to read: left out of the vertical layout
                continue
            assert cell in text, f"{cell!r} of {row.name} is not readable at {width} columns:\n{text}"


@pytest.mark.parametrize("width", [80, 60])
def test_the_models_table_keeps_every_figure_whole(width: int) -> None:
    text = _render(versions_table("digits", VERSIONS, width), width)
    assert "…" not in text
    for figure in ("distill+ort-int8-static", "accuracy 0.9944", "accuracy 0.9722", "1,234,567", "4.81 MB",
                   "0.35 MB", "champion", "challenger", "2026-12-07 20:01:02"):  # fmt: skip
        assert figure in text, f"{figure!r} is not readable at {width} columns:\n{text}"


def test_a_wide_terminal_gets_one_table_with_a_row_per_variant() -> None:
    text = _render(table(VARIANTS, "digits v1: variants", 250), 250)
    lines = [line for line in text.splitlines() if "│" in line]
    header = next(line for line in text.splitlines() if "┃" in line)
    assert "× torch b1" in header and "fidelity" in header  # all columns side by side
    for row in VARIANTS:
        assert sum(line.startswith(f"│ {row.name} ") for line in lines) == 1
