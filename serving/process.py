"""Runs the BentoML service as a child process (``bentoml serve``); imports no bentoml itself."""

from __future__ import annotations

import os
import sys

from lifecycle.errors import LifecycleError
from lifecycle.process import ManagedProcess, is_healthy, start_on_port
from lifecycle.settings import Settings
from serving.settings import ServingSettings


class ServingStartError(LifecycleError):
    """The serving process could not start."""


class ServingProcess:
    def __init__(self, settings: Settings, serving: ServingSettings) -> None:
        self.settings = settings
        self.serving = serving
        env = dict(os.environ)
        env.update(
            {
                # the child must find the same registry and database, whatever its working directory
                "LIFECYCLE_REGISTRY_TRACKING_URI": settings.tracking_uri,
                "LIFECYCLE_STATE_DIR": str(settings.state_path),
                "LIFECYCLE_DB_URL": settings.database_url,
                "BENTOML_DO_NOT_TRACK": "true",
                **{
                    f"LIFECYCLE_SERVING_{key.upper()}": str(value)
                    for key, value in serving.model_dump().items()
                },
            }
        )
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
