"""``lifecycle monitor run-now|status``, ``lifecycle drift history``, ``lifecycle alerts``."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from cli.control_client import call_control
from lifecycle.alerts import Alerter
from lifecycle.db import create_db_engine, session_factory, upgrade_to_head
from lifecycle.settings import Settings
from monitoring.monitor import drift_history

monitor_app = typer.Typer(
    help="The scheduled drift monitor: run a check now, see its state.", no_args_is_help=True
)
drift_app = typer.Typer(help="Drift checks.", no_args_is_help=True)
console = Console()

Url = Annotated[str | None, typer.Option(help="Control plane URL (default: from LIFECYCLE_CONTROL_*).")]


def _checks_table(checks: list[dict[str, Any]], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for column in (
        "id",
        "time (UTC)",
        "model",
        "version",
        "n",
        "severity",
        "input p",
        "confidence p",
        "classes p",
        "summary",
    ):
        table.add_column(column)
    for c in checks:
        p = {d["name"]: f"{d['p_value']:.2g}" for d in c["detectors"]}
        table.add_row(
            str(c["id"]), c["ts"][:19].replace("T", " "), c["model"], c["version"], str(c["n_current"]),
            c["severity"], p.get("input", "–"), p.get("confidence", "–"), p.get("classes", "–"), escape(c["summary"]),
        )  # fmt: skip
    return table


@monitor_app.command("run-now")
def run_now(
    model: Annotated[
        str | None, typer.Argument(help="Only this model (default: every monitored model).")
    ] = None,
    url: Url = None,
) -> None:
    """Run a drift check now (in the control plane), store it and alert as the schedule would."""
    data = call_control("POST", "/monitor/run-now", url, {"model": model} if model else None)
    console.print(_checks_table(data["checks"], "drift checks"))


@monitor_app.command("status")
def status(url: Url = None) -> None:
    """Scheduler state, interval, next run, and the latest checks."""
    data = call_control("GET", "/monitor/status", url)
    state = (
        "running"
        if data["scheduler_running"]
        else ("disabled" if not data["enabled"] else "not running (standby?)")
    )
    console.print(f"scheduler {state}, every {data['interval_s']:g} s, next run {data['next_run'] or '–'}")
    console.print(_checks_table(data["checks"], "latest drift checks"))


def _sessions() -> Any:
    engine = create_db_engine(Settings().database_url)
    upgrade_to_head(engine)
    return session_factory(engine)


@drift_app.command("history")
def history(
    model: Annotated[str | None, typer.Argument(help="Only this model.")] = None,
    limit: Annotated[int, typer.Option(help="How many checks.")] = 20,
) -> None:
    """Stored drift checks, newest first (read from the database)."""
    checks = drift_history(_sessions(), model, limit)
    rows = [
        {
            "id": c.id,
            "ts": c.ts.isoformat(),
            "model": c.model,
            "version": c.version,
            "n_current": c.verdict.n_current,
            "severity": c.verdict.severity.value,
            "summary": c.verdict.summary(),
            "detectors": [{"name": d.name, "p_value": d.p_value} for d in c.verdict.detectors],
        }
        for c in checks
    ]
    if not rows:
        console.print("no drift checks yet; `lifecycle monitor run-now` runs one")
        return
    console.print(_checks_table(rows, "drift history"))


def alerts_command(
    source: Annotated[str | None, typer.Option(help="Only alerts from rollout, drift or retrain.")] = None,
    limit: Annotated[int, typer.Option(help="How many alerts.")] = 20,
) -> None:
    """Every alert raised, newest first, with where it was delivered."""
    found = Alerter(_sessions()).recent(limit, source)
    if not found:
        console.print("no alerts")
        return
    table = Table(title="alerts", title_justify="left")
    for column in ("id", "time (UTC)", "source", "severity", "title", "message", "delivered"):
        table.add_column(column)
    for a in found:
        delivered = "suppressed (cool-down)" if a.suppressed else ", ".join(
            f"{name} {'ok' if d.get('ok') else 'FAILED'}" for name, d in a.deliveries.items() if isinstance(d, dict)
        )  # fmt: skip
        table.add_row(str(a.id), a.ts.isoformat()[:19].replace("T", " "), a.alert.source, a.alert.severity.value,
                      escape(a.alert.title), escape(a.alert.message[:200]), delivered)  # fmt: skip
    console.print(table)
