"""``lifecycle optimize`` and ``lifecycle register``."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from lifecycle.errors import LifecycleError
from lifecycle.optimize.gates import GateConfig
from lifecycle.optimize.recipes import DEFAULT_RECIPES, RECIPE_NAMES
from lifecycle.optimize.report import COLUMNS, Row, cells
from lifecycle.optimize.variant import RecipeOptions

console = Console()
err = Console(stderr=True)

STATUS_STYLE = {
    "registered": "green",
    "rejected": "red",
    "skipped": "yellow",
    "failed": "bold red",
    "baseline": "dim",
}


def table(rows: list[Row], title: str) -> Table:
    out = Table(title=title, title_justify="left")
    for column in COLUMNS:
        out.add_column(
            column, justify="left" if column in ("name", "runtime", "precision", "status") else "right"
        )
    for row in rows:
        out.add_row(*cells(row), style=STATUS_STYLE.get(row.status))
    return out


def optimize_command(
    name: Annotated[str, typer.Argument(help="Registered model name.")],
    version: Annotated[str, typer.Option("--version", "-v", help="Version to optimize.")],
    recipes: Annotated[
        str, typer.Option(help=f"Comma-separated recipes or chains (a+b). Known: {', '.join(RECIPE_NAMES)}.")
    ] = ",".join(DEFAULT_RECIPES),
    max_accuracy_drop: Annotated[float, typer.Option(help="Accuracy gate, in points.")] = 0.5,
    max_latency_ratio: Annotated[
        float, typer.Option(help="Latency gate vs the fastest FP32 runtime.")
    ] = 1.10,
    max_size_mb: Annotated[float | None, typer.Option(help="Size gate in MB.")] = None,
    calibration_method: Annotated[str, typer.Option(help="minmax, entropy or percentile.")] = "minmax",
    rounds: Annotated[int, typer.Option(help="Timing rounds at batch 1.")] = 200,
) -> None:
    """Make tracked, measured, gated compressed variants of a registered version."""
    from lifecycle.cli.app import _services
    from lifecycle.optimize.run import optimize

    gates = GateConfig(
        max_accuracy_drop=max_accuracy_drop / 100,
        max_latency_ratio=max_latency_ratio,
        max_size_bytes=None if max_size_mb is None else int(max_size_mb * 1e6),
    )
    options = RecipeOptions(max_accuracy_drop=gates.max_accuracy_drop, calibration_method=calibration_method)
    try:
        with (
            _services() as services,
            tempfile.TemporaryDirectory() as tmp,
            console.status("optimizing…") as status,
        ):
            report = optimize(
                services.registry, services.registry, name, version, Path(tmp),
                recipes=[r.strip() for r in recipes.split(",") if r.strip()], options=options,
                gate_config=gates, rounds=rounds, progress=lambda msg: status.update(msg),
            )  # fmt: skip
    except (LifecycleError, ValueError) as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}")
        raise typer.Exit(code=1) from exc
    console.print(
        table(report.rows, f"{name} v{version}: variants (speed-ups against the fastest FP32 runtime)")
    )
    for row in report.rows:
        if row.reason:
            console.print(f"  [bold]{escape(row.name)}[/] {row.status}: {escape(row.reason)}")
    console.print(
        f"{len(report.registered())} variants registered in {report.seconds:.0f} s; run: {report.run_url}"
    )


def register_command(
    name: Annotated[str, typer.Argument(help="Registered model name to create or add a version to.")],
    onnx_file: Annotated[Path, typer.Option("--onnx", exists=True, dir_okay=False, help="ONNX classifier.")],
    data: Annotated[
        Path,
        typer.Option(exists=True, dir_okay=False, help="NPZ with x_train…y_test, or x and y (split here)."),
    ],
    alias: Annotated[str | None, typer.Option(help="Alias to set on the new version.")] = None,
) -> None:
    """Register your own ONNX model with the arrays to calibrate and evaluate it."""
    from lifecycle.cli.app import _actor, _services
    from lifecycle.workflows import register_onnx_file

    try:
        with _services() as services:
            v = register_onnx_file(
                services.registry, name, str(onnx_file), str(data), alias=alias, actor=_actor()
            )
    except (LifecycleError, ValueError) as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}")
        raise typer.Exit(code=1) from exc
    console.print(
        f"registered [bold]{v.name}[/] v{v.version}: test accuracy {v.metrics['test_accuracy']:.4f}"
    )
