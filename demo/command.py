"""``lifecycle-demo`` (``python -m demo``): the guided tour of the whole loop against the stack that
``lifecycle up`` runs. A client of the CLI's building blocks and the stack's APIs; nothing imports it."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from cli.common import console, err
from control.services import connect
from control.settings import ControlSettings, persistent_secret
from demo.summary import summary_tables
from demo.tour import Tour
from lifecycle.errors import LifecycleError
from lifecycle.settings import Settings
from serving.settings import ServingSettings


def demo_command(
    rps: Annotated[float, typer.Option(help="Requests per second of the simulated clients.")] = 40.0,
    step_timeout: Annotated[float, typer.Option(help="Seconds any one wait may take.")] = 600.0,
) -> None:
    """The whole loop on the stack `make run` started: train → optimize → rollout → drift → retrain →
    rollout, with the figures at the end."""
    settings, control = Settings(), ControlSettings()
    token = persistent_secret(control.admin_token, settings.state_path / "control-token")
    try:
        services = connect(settings)
        try:
            tour = Tour(
                services, control.url(), _serving_url(ServingSettings()), token, console, rps=rps,
                step_timeout_s=step_timeout,
            )  # fmt: skip
            summary = tour.run()
        finally:
            services.close()
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


def main() -> None:
    typer.run(demo_command)
