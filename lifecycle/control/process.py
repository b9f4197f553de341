"""Runs the control plane as a child process (``python -m lifecycle.control``)."""

from __future__ import annotations

import json
import os
import sys

from pydantic import SecretStr
from pydantic_settings import BaseSettings

from lifecycle.control.settings import ControlSettings
from lifecycle.errors import LifecycleError
from lifecycle.process import ManagedProcess, start_on_port
from lifecycle.settings import Settings
from monitoring.channels import AlertSettings
from monitoring.settings import MonitorSettings
from retrain.settings import RetrainSettings
from serving.rollout.policy import RolloutPolicy


class ControlPlaneStartError(LifecycleError):
    """The control plane could not start."""


def settings_env(prefix: str, settings: BaseSettings) -> dict[str, str]:
    """Environment variables that rebuild ``settings`` in a child process (secrets included)."""
    env: dict[str, str] = {}
    for key in type(settings).model_fields:
        value = getattr(settings, key)
        if value is None:
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        elif isinstance(value, list | tuple | dict):
            value = json.dumps(list(value) if isinstance(value, tuple) else value)
        env[f"{prefix}{key.upper()}"] = str(value)
    return env


class ControlPlaneProcess:
    def __init__(
        self,
        settings: Settings,
        control: ControlSettings,
        policy: RolloutPolicy,
        monitoring: MonitorSettings | None = None,
        alerts: AlertSettings | None = None,
        retraining: RetrainSettings | None = None,
    ) -> None:
        self.settings = settings
        self.control = control
        env = dict(os.environ)
        env.update(
            {
                "LIFECYCLE_REGISTRY_TRACKING_URI": settings.tracking_uri,
                "LIFECYCLE_STATE_DIR": str(settings.state_path),
                "LIFECYCLE_DB_URL": settings.database_url,
                **settings_env("LIFECYCLE_CONTROL_", control),
                **settings_env("LIFECYCLE_ROLLOUT_", policy),
                **settings_env("LIFECYCLE_MONITOR_", monitoring or MonitorSettings()),
                **settings_env("LIFECYCLE_ALERT_", alerts or AlertSettings()),
                **settings_env("LIFECYCLE_RETRAIN_", retraining or RetrainSettings()),
            }
        )
        self._process = ManagedProcess(
            "control-plane", [sys.executable, "-m", "lifecycle.control"], health_url=f"{self.url}/healthz",
            log_path=settings.logs_dir / "control-plane.log", env=env, cwd=settings.state_path,
            startup_timeout_s=60,
        )  # fmt: skip

    @property
    def url(self) -> str:
        return f"http://{self.control.host}:{self.control.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid

    def start(self) -> str:
        start_on_port(
            self._process, self.control.host, self.control.port, setting="LIFECYCLE_CONTROL_PORT",
            error=ControlPlaneStartError,
        )  # fmt: skip
        return self.url

    def stop(self) -> None:
        self._process.stop()

    def kill(self) -> None:
        self._process.kill()

    def log_tail(self, lines: int = 40) -> str:
        return self._process.log_tail(lines)
