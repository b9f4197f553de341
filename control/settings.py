"""Control-plane settings (``LIFECYCLE_CONTROL_*``)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Annotated

from annotated_types import Ge, Gt, Le
from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class ControlSettings(BaseSettings):
    """The control-plane process: its address, admin token, MLflow webhook and loop timing."""

    model_config = SettingsConfigDict(env_prefix="LIFECYCLE_CONTROL_", extra="forbid")

    host: str = "127.0.0.1"
    """Interface the control plane binds to."""
    port: Annotated[int, Ge(1), Le(65535)] = 8800
    """Port of the control plane's API (status, admin, webhook receiver, metrics)."""
    public_url: str | None = None
    """URL at which the MLflow server reaches us (webhook target). Unset: ``http://host:port``."""
    admin_token: SecretStr | None = None
    """Bearer token of the admin API. Unset: generated once, kept in ``<state>/control-token``."""
    webhook_secret: SecretStr | None = None
    """HMAC secret of the MLflow webhook. Unset: generated once, kept in ``<state>/webhook-secret``."""
    webhooks: bool = True
    """Register a webhook with MLflow at start. Polling runs either way (slower with webhooks)."""
    webhook_tolerance_s: Annotated[float, Gt(0)] = 300.0
    """Deliveries whose timestamp is further from now than this are refused (replay protection)."""
    tick_interval_s: Annotated[float, Gt(0)] = 0.5
    """How often the controller checks whether an analysis is due."""
    poll_interval_s: Annotated[float, Gt(0)] = 5.0
    """Alias polling: the fallback when webhooks are unavailable, and a safety net when they are."""
    leader_ttl_s: Annotated[float, Gt(0)] = 15.0
    """Leader lease; a standby takes over this long after the leader stopped renewing."""
    watch: list[str] = []
    """Registered models whose new versions become challengers on their own (MLflow's "Promote
    model" button copies a version into such a production model)."""

    def url(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}"


def persistent_secret(configured: SecretStr | None, path: Path) -> str:
    """The configured secret, or one generated once and kept (mode 0600) at ``path``."""
    if configured is not None:
        return configured.get_secret_value()
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(value)
    return value
