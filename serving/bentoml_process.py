"""Runs the BentoML service as a child process (``bentoml serve``); imports no bentoml itself."""

from __future__ import annotations

import sys

from lifecycle.child_process import ManagedProcess, child_env, is_healthy, start_on_port
from lifecycle.errors import LifecycleError
from lifecycle.settings import Settings
from serving.settings import ServingSettings


class ServingStartError(LifecycleError):
    """The serving process could not start."""


class ServingProcess:
    def __init__(self, settings: Settings, serving: ServingSettings) -> None:
        self.settings = settings
        self.serving = serving
        env = child_env(settings, ("LIFECYCLE_SERVING_", serving))
        env["BENTOML_DO_NOT_TRACK"] = "true"
        # `bentoml serve` empties $BENTOML_HOME/prometheus_multiproc_dir when it starts: two services
        # sharing a home (the default ~/bentoml) wipe each other's metrics files. One home per port.
        env["BENTOML_HOME"] = str(settings.state_path / "bentoml" / f"serving-{serving.port}")
        command = [
            sys.executable, "-m", "bentoml", "serve", "serving.service:Classifier",
            "--host", serving.host, "--port", str(serving.port),
        ]  # fmt: skip
        self._process = ManagedProcess(
            "serving", command, health_url=f"{self.url}/livez", log_path=settings.logs_dir / "serving.log",
            env=env, cwd=settings.state_path, startup_timeout_s=120,
        )  # fmt: skip

    @property
    def url(self) -> str:
        return f"http://{self.serving.host}:{self.serving.port}"

    def start(self) -> str:
        start_on_port(
            self._process, self.serving.host, self.serving.port, setting="LIFECYCLE_SERVING_PORT",
            error=ServingStartError,
        )  # fmt: skip
        return self.url

    def ready(self) -> bool:
        return is_healthy(f"{self.url}/readyz")

    def stop(self) -> None:
        self._process.stop()
