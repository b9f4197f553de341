"""``lifecycle retrain now|status|history``."""

from __future__ import annotations

import os
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from control.compose import local_retrainer
from control.services import connect
from lifecycle.db import session_factory
from lifecycle.errors import LifecycleError
from lifecycle.settings import Settings
from retrain.jobs import RetrainJob, RetrainJobs

retrain_app = typer.Typer(
    help="Distillation-based retraining: run one now, see the jobs.", no_args_is_help=True
)
console = Console()
err = Console(stderr=True)


def _table(jobs: list[RetrainJob], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for column in (
        "id",
        "model",
        "trigger",
        "status",
        "started (UTC)",
        "champion",
        "teacher",
        "challenger",
        "samples",
        "clean acc",
        "seconds",
        "error",
    ):
        table.add_column(column)
    for j in jobs:
        c, m = j.counts, j.metrics
        samples = (
            f"{c.get('production', 0)} prod, {c.get('feedback_train', 0)}+{c.get('feedback_val', 0)} labeled"
            if c
            else ""
        )
        acc = (
            f"{m['student_clean_val_accuracy']:.4f} vs {m['champion_clean_val_accuracy']:.4f}"
            if "student_clean_val_accuracy" in m
            else ""
        )
        table.add_row(
            str(j.id), j.model, f"{j.trigger} {j.trigger_ref}".strip()[:40], j.status, j.started_at.isoformat()[:19],
            j.champion_version or "", j.teacher_version or "", j.challenger_version or "", samples, acc,
            f"{m['retrain_seconds']:.0f}" if "retrain_seconds" in m else "", escape((j.error or "")[:80]),
        )  # fmt: skip
    return table


@retrain_app.command()
def now(model: Annotated[str, typer.Argument(help="Registered model whose champion is retrained.")]) -> None:
    """Retrain MODEL now (in this process): distill, quantize, register, set alias challenger."""
    settings = Settings()
    try:
        services = connect(settings)
    except LifecycleError as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}")
        raise typer.Exit(1) from exc
    try:
        retrainer = local_retrainer(services, owner=f"cli:{os.environ.get('USER', 'unknown')}:{os.getpid()}")
        with console.status(f"retraining {model} …"):
            job = retrainer.run(model, "manual", f"cli:{os.environ.get('USER', 'unknown')}")
    except LifecycleError as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}")
        raise typer.Exit(1) from exc
    finally:
        services.close()
    console.print(_table([job], "retrain"))
    if job.status != "succeeded":
        raise typer.Exit(1)
    console.print(f"{model} v{job.challenger_version} is the challenger; the rollout takes it from here")


@retrain_app.command()
def history(
    model: Annotated[str | None, typer.Argument(help="Only this model.")] = None,
    limit: Annotated[int, typer.Option(help="How many jobs.")] = 20,
) -> None:
    """Retrain jobs, newest first."""
    services = connect(Settings(), check_registry=False)
    try:
        jobs = RetrainJobs(session_factory(services.engine)).history(model, limit)
    finally:
        services.close()
    if not jobs:
        console.print("no retrain jobs yet; `lifecycle retrain now MODEL` runs one")
        return
    console.print(_table(jobs, "retrain jobs"))


@retrain_app.command()
def status(model: Annotated[str | None, typer.Argument(help="Only this model.")] = None) -> None:
    """The latest retrain job (running, succeeded or failed)."""
    history(model, limit=1)
