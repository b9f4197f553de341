"""``lifecycle optimize`` and ``lifecycle register``."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.console import RenderableType
from rich.markup import escape

from cli.common import actor, connected, console, err
from cli.render import Column, fitted
from lifecycle.contract import TASKS
from lifecycle.errors import LifecycleError
from optimize.gates import GateConfig
from optimize.recipes import DEFAULT_RECIPES, RECIPE_NAMES
from optimize.table import COLUMNS, Row, cells
from optimize.variant import RecipeOptions

STATUS_STYLE = {
    "registered": "green",
    "rejected": "red",
    "skipped": "yellow",
    "failed": "bold red",
    "baseline": "dim",
}


VARIANT_COLUMNS = tuple(Column(c, right=c not in ("name", "runtime", "precision", "status")) for c in COLUMNS)


def table(rows: list[Row], title: str, width: int) -> RenderableType:
    """The variant table of an optimization run, fitted to ``width`` (see :func:`cli.render.fitted`)."""
    return fitted(
        title, VARIANT_COLUMNS, [cells(r) for r in rows], width, [STATUS_STYLE.get(r.status) for r in rows]
    )


def optimize_command(
    name: Annotated[str, typer.Argument(help="Registered model name.")],
    version: Annotated[str, typer.Option("--version", "-v", help="Version to optimize.")],
    recipes: Annotated[
        str, typer.Option(help=f"Comma-separated recipes or chains (a+b). Known: {', '.join(RECIPE_NAMES)}.")
    ] = ",".join(DEFAULT_RECIPES),
    max_accuracy_drop: Annotated[
        float, typer.Option(help="Classification gate with labels: accuracy drop, in points.")
    ] = 0.5,
    max_agreement_drop: Annotated[
        float, typer.Option(help="Classification gate without labels: top-1 agreement drop, in points.")
    ] = 1.0,
    max_map_drop: Annotated[
        float, typer.Option(help="Detection gate with labels: mAP@0.5 drop, in points.")
    ] = 1.0,
    min_box_agreement: Annotated[
        float, typer.Option(help="Detection gate without labels: box agreement with FP32.")
    ] = 0.95,
    max_rmse_rise: Annotated[
        float, typer.Option(help="Regression gate: relative RMSE rise, in percent.")
    ] = 5.0,
    min_cosine: Annotated[float, typer.Option(help="Embedding gate: mean cosine to FP32.")] = 0.99,
    max_latency_ratio: Annotated[
        float, typer.Option(help="Latency gate vs the fastest FP32 runtime.")
    ] = 1.10,
    max_size_mb: Annotated[float | None, typer.Option(help="Size gate in MB.")] = None,
    calibration_method: Annotated[str, typer.Option(help="minmax, entropy or percentile.")] = "minmax",
    rounds: Annotated[int, typer.Option(help="Timing rounds at batch 1.")] = 200,
) -> None:
    """Make tracked, measured, gated compressed variants of a registered version."""
    from optimize.run import optimize  # the recipes' libraries load for this command only

    gates = GateConfig(
        max_accuracy_drop=max_accuracy_drop / 100,
        max_agreement_drop=max_agreement_drop / 100,
        max_map_drop=max_map_drop / 100,
        min_box_agreement=min_box_agreement,
        max_rmse_rise=max_rmse_rise / 100,
        min_cosine=min_cosine,
        max_latency_ratio=max_latency_ratio,
        max_size_bytes=None if max_size_mb is None else int(max_size_mb * 1e6),
    )
    options = RecipeOptions(
        max_accuracy_drop=gates.max_accuracy_drop, gates=gates, calibration_method=calibration_method
    )
    try:
        with (
            connected() as services,
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
        table(
            report.rows,
            f"{name} v{version}: variants (speed-ups against the fastest FP32 runtime)",
            console.width,
        )
    )
    for row in report.rows:
        if row.reason:
            console.print(f"  [bold]{escape(row.name)}[/] {row.status}: {escape(row.reason)}")
    console.print(
        f"{len(report.registered())} variants registered in {report.seconds:.0f} s; run: {report.run_url}"
    )


def register_command(
    name: Annotated[str, typer.Argument(help="Registered model name to create or add a version to.")],
    data: Annotated[
        Path,
        typer.Option(
            exists=True,
            dir_okay=False,
            help="NPZ of arrays named after the inputs; labels optional (y, or boxes/box_classes/box_item).",
        ),
    ],
    onnx_file: Annotated[
        Path | None, typer.Option("--onnx", exists=True, dir_okay=False, help="An ONNX model.")
    ] = None,
    sklearn_file: Annotated[
        Path | None,
        typer.Option("--sklearn", exists=True, dir_okay=False, help="A joblib-saved scikit-learn estimator."),
    ] = None,
    torch_factory: Annotated[
        str | None, typer.Option("--torch", help="package.module:factory returning a torch.nn.Module.")
    ] = None,
    from_uri: Annotated[
        str | None,
        typer.Option(
            "--from", help="models:/NAME/VERSION logged by your code (onnx, pytorch or sklearn flavor)."
        ),
    ] = None,
    weights: Annotated[
        Path | None,
        typer.Option(exists=True, dir_okay=False, help="Weights for --torch (safetensors or state dict)."),
    ] = None,
    task: Annotated[str, typer.Option(help=f"One of {', '.join(TASKS)}.")] = "classification",
    output: Annotated[str, typer.Option(help="The output the task reads (default: the first).")] = "",
    classes: Annotated[str, typer.Option(help="Class names, comma-separated.")] = "",
    targets: Annotated[str, typer.Option(help="Regression target names, comma-separated.")] = "",
    scores: Annotated[
        str | None, typer.Option(help="logits or probabilities (default: read from the graph).")
    ] = None,
    shape: Annotated[
        list[str] | None, typer.Option(help="NAME=DIM,… fixes or names a tensor's dimensions; repeat.")
    ] = None,
    pad: Annotated[
        list[str] | None, typer.Option(help="NAME=VALUE pads a dynamic dimension when batching; repeat.")
    ] = None,
    pooling: Annotated[str | None, typer.Option(help="Embedding: mean, cls or none.")] = None,
    pooling_mask: Annotated[
        str, typer.Option(help="Embedding: the mask input of mean pooling.")
    ] = "attention_mask",
    normalize: Annotated[bool, typer.Option(help="Embedding: L2-normalise the pooled vector.")] = True,
    decoder: Annotated[str, typer.Option(help="Detection: yolov8 or boxes.")] = "yolov8",
    output_names: Annotated[
        str, typer.Option(help="--torch: names of forward()'s outputs, comma-separated.")
    ] = "",
    alias: Annotated[str | None, typer.Option(help="Alias to set on the new version.")] = None,
) -> None:
    """Register your own model (ONNX, PyTorch, scikit-learn, or a version your code logged to MLflow)
    with arrays to calibrate and evaluate it."""
    # the converters (torch's exporter, skl2onnx, ONNX Runtime) load for this command only
    from intake.graph_contract import ContractOptions, parse_pad, parse_shape
    from intake.register import (
        package_logged,
        package_onnx_file,
        package_sklearn,
        package_torch,
        register,
    )
    from lifecycle.contract import Detection, Pooling
    from registry.logged import load_logged_model

    sources = [s for s in (onnx_file, sklearn_file, torch_factory, from_uri) if s is not None]
    try:
        if len(sources) != 1:
            raise ValueError(
                "give exactly one of --onnx FILE, --sklearn FILE, --torch package.module:factory, "
                "--from models:/NAME/VERSION"
            )
        options = ContractOptions(
            task=task, primary_output=output, class_names=_names(classes), target_names=_names(targets), scores=scores,
            shapes=dict(parse_shape(s) for s in shape or []), pad_values=dict(parse_pad(p) for p in pad or []),
            pooling=None if pooling is None else Pooling(pooling, mask=pooling_mask or None, normalize=normalize),
            detection=Detection(decoder=decoder) if task == "detection" else None,
        )  # fmt: skip
        with connected() as services:
            with console.status(f"checking and packaging {name}…"):
                if onnx_file is not None:
                    package = package_onnx_file(name, onnx_file, data, options)
                elif sklearn_file is not None:
                    package = package_sklearn(name, sklearn_file, data, options)
                elif from_uri is not None:
                    logged = load_logged_model(services.registry.tracking_uri, from_uri)
                    package = package_logged(name, logged, data, options, output_names=_names(output_names))
                else:
                    assert torch_factory is not None
                    package = package_torch(
                        name, torch_factory, data, options, weights=weights, output_names=_names(output_names)
                    )
            registered = register(services.registry, package, alias=alias, actor=actor())
    except (LifecycleError, ValueError) as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}")
        raise typer.Exit(code=1) from exc
    v = registered.version
    metric, value = registered.metric
    console.print(f"registered [bold]{v.name}[/] v{v.version}: test {metric} {value:.4f}")
    console.print(f"  contract: {escape(package.contract.describe())}")
    if "export_max_abs_diff" in package.metrics:
        console.print(
            f"  export max abs difference from the source model: {package.metrics['export_max_abs_diff']:.2e}"
        )


def _names(text: str) -> tuple[str, ...]:
    return tuple(n.strip() for n in text.split(",") if n.strip())
