"""``lifecycle rollout start|status|pause|resume|promote|abort``: a client of the control plane's API."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from cli.control_client import call_control

rollout_app = typer.Typer(
    help="Shadow and canary rollouts: start, watch, pause, resume, promote, abort.", no_args_is_help=True
)
console = Console()

Url = Annotated[str | None, typer.Option(help="Control plane URL (default: from LIFECYCLE_CONTROL_*).")]


def _show(data: dict[str, Any]) -> None:
    r = data["rollout"]
    traffic = r["traffic"]
    console.print(
        f"[bold]{r['model']}[/] rollout {r['id']}: v{r['champion']} (champion) → v{r['challenger']} (challenger)\n"
        f"  phase [bold]{escape(r['where'])}[/], canary {traffic['canary'] * 100:.0f} %, "
        f"mirrored {traffic['mirror'] * 100:.0f} %, failed analyses {r['failures']}/{r['threshold']}, "
        f"interval {r['interval_s']:g} s, steps {r['steps']}"
    )
    if r["reason"]:
        console.print(f"  reason: {escape(r['reason'])}")
    verdicts = data.get("verdicts") or []
    if not verdicts:
        return
    table = Table(title="last verdicts", title_justify="left")
    for column in ("time (UTC)", "phase", "canary", "outcome", "checks (value / threshold, n)", "decision"):
        table.add_column(column)
    for v in verdicts:
        checks = "\n".join(
            f"{'✓' if c['passed'] else ('✗' if c['passed'] is False else '·')} {c['name']} "
            f"{_num(c['value'])} / {_num(c['threshold'])}, n={c['n']}"
            for c in v["checks"]
        )
        table.add_row(
            v["ts"][11:19], f"{v['phase']} {v['step'] + 1 if v['phase'] == 'canary' else ''}".strip(),
            f"{v['canary_weight'] * 100:.0f} %", v["outcome"], checks, escape(v["decision"]),
        )  # fmt: skip
    console.print(table)


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


@rollout_app.command()
def start(
    model: Annotated[str, typer.Argument(help="Registered model name.")],
    version: Annotated[str, typer.Argument(help="Version to roll out (becomes alias challenger).")],
    url: Url = None,
) -> None:
    """Set alias challenger on VERSION and start its rollout (shadow, then canary steps)."""
    _show(call_control("POST", f"/rollouts/{model}/start", url, {"version": version}))


@rollout_app.command()
def status(model: Annotated[str, typer.Argument(help="Registered model name.")], url: Url = None) -> None:
    """Phase, step, traffic shares, and the last verdicts with their numbers."""
    _show(call_control("GET", f"/rollouts/{model}", url))


def _action(name: str, help_text: str) -> None:
    def command(
        model: Annotated[str, typer.Argument(help="Registered model name.")], url: Url = None
    ) -> None:
        _show(call_control("POST", f"/rollouts/{model}/{name}", url))

    command.__doc__ = help_text
    rollout_app.command(name)(command)


_action("pause", "Freeze the rollout where it is (traffic shares stay).")
_action("resume", "Continue a paused rollout from its step.")
_action("promote", "Promote the challenger now (alias champion moves).")
_action("abort", "Stop the rollout: challenger traffic to 0, alias challenger removed.")
