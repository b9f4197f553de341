"""Runs the control plane as a child process (``python -m control``)."""

from __future__ import annotations

import sys

from control.settings import ControlSettings
from lifecycle.alert_channels import AlertSettings
from lifecycle.child_process import ManagedProcess, child_env, start_on_port
from lifecycle.errors import LifecycleError
from lifecycle.settings import Settings
from monitoring.settings import MonitorSettings
from retrain.settings import RetrainSettings
from rollout.policy import RolloutPolicy


class ControlPlaneStartError(LifecycleError):
    """The control plane could not start."""


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
        env = child_env(
            settings,
            ("LIFECYCLE_CONTROL_", control),
            ("LIFECYCLE_ROLLOUT_", policy),
            ("LIFECYCLE_MONITOR_", monitoring or MonitorSettings()),
            ("LIFECYCLE_ALERT_", alerts or AlertSettings()),
            ("LIFECYCLE_RETRAIN_", retraining or RetrainSettings()),
        )
        self._process = ManagedProcess(
            "control-plane", [sys.executable, "-m", "control"], health_url=f"{self.url}/healthz",
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
