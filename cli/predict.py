"""``lifecycle predict``: send rows to the serving process and show the answer."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from control.services import connect
from lifecycle.errors import LifecycleError
from lifecycle.settings import Settings
from serving.settings import ServingSettings

console = Console()
err = Console(stderr=True)


def predict_command(
    rows: Annotated[str | None, typer.Option(help='JSON rows, e.g. "[[0, 1, ...]]".')] = None,
    sample: Annotated[int, typer.Option(help="Send N rows of the served model's test split.")] = 0,
    url: Annotated[str | None, typer.Option(help="Serving URL (default: from LIFECYCLE_SERVING_*).")] = None,
) -> None:
    """Send rows to the serving process; print class, label, confidence and the version that answered."""
    serving = ServingSettings()
    base = url or f"http://{serving.host}:{serving.port}"
    labels: list[int] | None = None
    try:
        if sample:
            instances, labels = _sample(serving, sample)
        elif rows:
            instances = json.loads(rows)
        else:
            raise typer.BadParameter("give --rows or --sample")
        response = httpx.post(f"{base}/v1/predict", json={"instances": instances}, timeout=30)
    except (LifecycleError, json.JSONDecodeError) as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}")
        raise typer.Exit(1) from exc
    except httpx.HTTPError as exc:
        err.print(
            f"[bold red]error:[/] serving at {base} is not reachable ({exc}); start it with `lifecycle up`"
        )
        raise typer.Exit(1) from exc
    if response.status_code != 200:
        err.print(f"[bold red]error {response.status_code}:[/] {escape(response.text)}")
        raise typer.Exit(1)
    body = response.json()
    table = Table(title=f"{body['model']} v{body['version']} ({body['role']}), request {body['request_id']}")
    for column in ("row", "class", "label", "confidence", *(["true"] if labels else [])):
        table.add_column(column)
    for i, (cls, label, conf) in enumerate(
        zip(body["classes"], body["labels"], body["confidences"], strict=True)
    ):
        table.add_row(str(i), str(cls), label, f"{conf:.3f}", *([str(labels[i])] if labels else []))
    console.print(table)


def _sample(serving: ServingSettings, n: int) -> tuple[list[list[float]], list[int]]:
    services = connect(Settings())
    try:
        version = services.registry.get_by_alias(serving.model, serving.alias)
        with tempfile.TemporaryDirectory() as tmp:
            data = services.registry.download(version.name, version.version, Path(tmp)).splits()
    finally:
        services.close()
    return data.x_test[:n].tolist(), data.y_test[:n].tolist()
