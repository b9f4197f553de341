"""The embedded MLflow server: a subprocess on a SQLite backend with a local artifact store.

Started with the webhook environment that MLflow 3 needs to deliver signed webhooks to loopback
receivers (STACK_NOTES §4): a persistent Fernet key (without it, webhook secrets become unreadable
after a restart), http allowed, private IPs allowed, and a short webhook-list cache.
"""

from __future__ import annotations

import base64
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import httpx

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
        self.backend_uri = backend_uri
        self.artifacts_dir = artifacts_dir
        self.state_dir = state_dir
        self.workers = workers
        self.startup_timeout_s = startup_timeout_s
        self.log_path = state_dir / "logs" / "mlflow-server.log"
        self._process: subprocess.Popen[bytes] | None = None

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
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> str:
        """Start the server and wait until ``/health`` answers; return its URL.

        :raises RegistryUnavailableError: when the port is taken or the server does not come up.
        """
        if self.running:
            return self.url
        if _port_open(self.host, self.port):
            raise RegistryUnavailableError(
                f"port {self.port} on {self.host} is already in use; stop what runs there or set "
                "LIFECYCLE_REGISTRY_PORT to a free port"
            )
        self.artifacts_dir.mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable, "-m", "mlflow", "server",
            "--backend-store-uri", self.backend_uri,
            "--artifacts-destination", str(self.artifacts_dir),
            "--host", self.host,
            "--port", str(self.port),
            "--workers", str(self.workers),
        ]  # fmt: skip
        with self.log_path.open("ab") as log_file:
            self._process = subprocess.Popen(
                command,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env=self._environment(),
                start_new_session=True,  # its own process group: stop() takes the workers down too
            )
        self._wait_healthy()
        log.info("MLflow server ready at %s (pid %s)", self.url, self._process.pid)
        return self.url

    def stop(self, timeout_s: float = 20.0) -> None:
        """Terminate the server's process group; kill it if it has not exited within ``timeout_s``."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, timeout_s), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                return
            try:
                process.wait(wait)
                return
            except subprocess.TimeoutExpired:
                continue

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

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise RegistryUnavailableError(
                    f"MLflow server exited with code {self._process.returncode} during start-up; "
                    f"last lines of {self.log_path}:\n{self.log_tail()}"
                )
            if is_healthy(self.url, timeout_s=1.0):
                return
            time.sleep(0.25)
        self.stop()
        raise RegistryUnavailableError(
            f"MLflow server did not become healthy within {self.startup_timeout_s:.0f} s; "
            f"last lines of {self.log_path}:\n{self.log_tail()}"
        )

    def log_tail(self, lines: int = 20) -> str:
        if not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def is_healthy(url: str, timeout_s: float = 2.0) -> bool:
    try:
        return httpx.get(f"{url.rstrip('/')}/health", timeout=timeout_s).status_code == 200
    except httpx.HTTPError:
        return False


def _port_open(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0
