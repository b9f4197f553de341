"""What every ``lifecycle`` command shares: consoles, the services context, error exits."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console
from rich.markup import escape

from control.services import Services, open_services
from lifecycle.settings import Settings

console = Console()
err = Console(stderr=True)


@contextmanager
def connected() -> Iterator[Services]:
    """The database and registry for one command. Without a configured tracking URI and with no
    MLflow server running, the embedded one is started for the command (as ``lifecycle up`` does)."""

    def started(url: str) -> None:
        err.print(f"[dim]no MLflow server was running: started the embedded one at {url} for this command[/]")

    with open_services(Settings(), on_embedded_start=started) as opened:
        yield opened


def fail(exc: Exception) -> typer.Exit:
    err.print(f"[bold red]error:[/] {escape(str(exc))}")
    return typer.Exit(code=1)


def actor() -> str:
    return f"cli:{os.environ.get('USER', 'unknown')}"
