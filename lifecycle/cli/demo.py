"""``lifecycle demo``: the guided tour of the whole loop against the running stack."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from lifecycle.control.settings import ControlSettings, persistent_secret
from lifecycle.errors import LifecycleError
from lifecycle.settings import Settings
from serving.settings import ServingSettings

console = Console()
err = Console(stderr=True)


def demo_command(
    rps: Annotated[float, typer.Option(help="Requests per second of the simulated clients.")] = 40.0,
    step_timeout: Annotated[float, typer.Option(help="Seconds any one wait may take.")] = 600.0,
) -> None:
    """The whole loop on the stack `make run` started: train → optimize → rollout → drift → retrain →
    rollout, with the figures at the end."""
    from lifecycle.cli.app import _services
    from lifecycle.demo.report import summary_tables
    from lifecycle.demo.tour import Tour

    settings, control = Settings(), ControlSettings()
    token = persistent_secret(control.admin_token, settings.state_path / "control-token")
    try:
        with _services() as services:
            tour = Tour(
                services, control.url(), _serving_url(ServingSettings()), token, console, rps=rps,
                step_timeout_s=step_timeout,
            )  # fmt: skip
            summary = tour.run()
    except LifecycleError as exc:
        err.print(f"[bold red]demo stopped:[/] {escape(str(exc))}")
        raise typer.Exit(1) from exc
    console.rule("[bold]summary")
    for table in summary_tables(summary):
        console.print(table)
    traffic = summary.traffic
    console.print(
        f"traffic: {traffic['sent']} requests, {traffic['answered']} answered, "
        f"[bold]{traffic['failed']} failed[/], {traffic['feedback']} labeled by feedback; served by "
        + ", ".join(f"{k}: {n}" for k, n in traffic["served_by"].items())
    )
    for error in traffic["errors"]:
        console.print(f"  client error: {escape(error)}")
    console.print("where to look in the MLflow UI:")
    for label, url in summary.links.items():
        console.print(f"  {label:<16} {url}")
    if traffic["failed"]:
        raise typer.Exit(1)


def _serving_url(serving: ServingSettings) -> str:
    return f"http://{serving.host}:{serving.port}"
