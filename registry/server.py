"""The embedded MLflow server: a subprocess on a SQLite backend with a local artifact store.

Started with the webhook environment that MLflow 3 needs to deliver signed webhooks to loopback
receivers: a persistent Fernet key (without it, webhook secrets become unreadable
after a restart), http allowed, private IPs allowed, and a short webhook-list cache.
"""

from __future__ import annotations

import base64
import logging
import os
import secrets
import sys
from pathlib import Path
from types import TracebackType

from lifecycle.child_process import ManagedProcess, ProcessStartError, port_open
from lifecycle.child_process import is_healthy as _is_healthy
from lifecycle.errors import ConfigurationError, RegistryUnavailableError
from lifecycle.settings import Settings

log = logging.getLogger(__name__)


class MlflowServerProcess:
    def __init__(
        self,
        *,
        host: str,
        port: int,
        backend_uri: str,
        artifacts_dir: Path,
        state_dir: Path,
        workers: int = 1,
        startup_timeout_s: float = 90.0,
    ) -> None:
        self.host = host
        self.port = port
        self.artifacts_dir = artifacts_dir
        self.state_dir = state_dir
        command = [
            sys.executable, "-m", "mlflow", "server",
            "--backend-store-uri", backend_uri,
            "--artifacts-destination", str(artifacts_dir),
            "--host", host,
            "--port", str(port),
            "--workers", str(workers),
        ]  # fmt: skip
        self._process = ManagedProcess(
            "MLflow server", command, health_url=f"{self.url}/health",
            log_path=state_dir / "logs" / "mlflow-server.log", startup_timeout_s=startup_timeout_s,
        )  # fmt: skip

    @classmethod
    def from_settings(cls, settings: Settings) -> MlflowServerProcess:
        if not settings.embedded_registry:
            raise ConfigurationError(
                "LIFECYCLE_REGISTRY_TRACKING_URI is set: the registry is remote, no embedded server to start"
            )
        return cls(
            host=settings.registry.host,
            port=settings.registry.port,
            backend_uri=settings.mlflow_backend_uri,
            artifacts_dir=settings.mlflow_artifacts_dir,
            state_dir=settings.state_path,
            workers=settings.registry.workers,
            startup_timeout_s=settings.registry.startup_timeout_s,
        )

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self._process.log_path

    @property
    def running(self) -> bool:
        return self._process.running

    def start(self) -> str:
        """Start the server and wait until ``/health`` answers; return its URL.

        :raises RegistryUnavailableError: when the port is taken or the server does not come up.
        """
        if self.running:
            return self.url
        if port_open(self.host, self.port):
            raise RegistryUnavailableError(
                f"port {self.port} on {self.host} is already in use; stop what runs there or set "
                "LIFECYCLE_REGISTRY_PORT to a free port"
            )
        self.artifacts_dir.mkdir(parents=True, exist_ok=True)
        self._process.env = self._environment()
        try:
            self._process.start()
        except ProcessStartError as exc:
            raise RegistryUnavailableError(str(exc)) from exc
        log.info("MLflow server ready at %s (pid %s)", self.url, self._process.pid)
        return self.url

    def stop(self, timeout_s: float = 20.0) -> None:
        self._process.stop(timeout_s)

    def log_tail(self, lines: int = 20) -> str:
        return self._process.log_tail(lines)

    def __enter__(self) -> MlflowServerProcess:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY": self._webhook_key(),
                "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https",
                "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true",
                "MLFLOW_WEBHOOK_CACHE_TTL": "1",
                "MLFLOW_DISABLE_TELEMETRY": "true",
                # MLflow 3's job runner (five huey consumer processes, ~250 MB and a steady slice of
                # CPU each) serves GenAI features this product does not use; webhooks do not need it.
                "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
                "DO_NOT_TRACK": "true",
            }
        )
        return env

    def _webhook_key(self) -> str:
        """A Fernet key kept in the state directory, so webhook secrets survive restarts."""
        path = self.state_dir / "webhook-encryption.key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())
            path.chmod(0o600)
        return path.read_text().strip()


def is_healthy(url: str, timeout_s: float = 2.0) -> bool:
    return _is_healthy(f"{url.rstrip('/')}/health", timeout_s)
