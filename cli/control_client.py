"""The CLI's client of the control plane's HTTP API (admin calls carry the bearer token)."""

from __future__ import annotations

import os
from typing import Any

import httpx
import typer
from rich.console import Console
from rich.markup import escape

from control.settings import ControlSettings, persistent_secret
from lifecycle.settings import Settings

err = Console(stderr=True)


def call_control(
    method: str, path: str, url: str | None, body: dict[str, str] | None = None
) -> dict[str, Any]:
    control = ControlSettings()
    base = url or control.url()
    headers = {"X-Actor": f"cli:{os.environ.get('USER', 'unknown')}"}
    if method == "POST":
        token = persistent_secret(control.admin_token, Settings().state_path / "control-token")
        headers["Authorization"] = f"Bearer {token}"
    try:
        r = httpx.request(method, f"{base}{path}", json=body, headers=headers, timeout=120)
    except httpx.HTTPError as exc:
        err.print(
            f"[bold red]error:[/] control plane at {base} is not reachable ({escape(str(exc))}); start it with `lifecycle up`"
        )
        raise typer.Exit(1) from exc
    if r.status_code >= 400:
        try:
            message = r.json().get("error", r.text)
        except ValueError:
            message = r.text
        err.print(f"[bold red]error:[/] {escape(str(message))} (HTTP {r.status_code})")
        raise typer.Exit(1)
    return dict(r.json())
