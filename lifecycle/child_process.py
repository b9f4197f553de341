"""A child process with a log file, a health URL, and a clean stop (its whole process group)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

import httpx
from pydantic import SecretStr
from pydantic_settings import BaseSettings

from lifecycle.errors import LifecycleError
from lifecycle.settings import Settings


class ProcessStartError(LifecycleError):
    """A managed process could not start or did not become healthy."""


class ManagedProcess:
    def __init__(
        self,
        name: str,
        command: Sequence[str],
        *,
        health_url: str,
        log_path: Path,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        startup_timeout_s: float = 90.0,
    ) -> None:
        self.name = name
        self.command = list(command)
        self.health_url = health_url
        self.log_path = log_path
        self.env = env
        self.cwd = cwd
        self.startup_timeout_s = startup_timeout_s
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def start(self) -> None:
        """:raises ProcessStartError: with the last lines of the log."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log_file:
            self._process = subprocess.Popen(
                self.command, stdout=log_file, stderr=subprocess.STDOUT, env=self.env, cwd=self.cwd,
                start_new_session=True,  # its own process group: stop() takes its workers down too
            )  # fmt: skip
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise ProcessStartError(
                    f"{self.name} exited with code {self._process.returncode} during start-up; "
                    f"last lines of {self.log_path}:\n{self.log_tail()}"
                )
            if is_healthy(self.health_url, timeout_s=1.0):
                return
            time.sleep(0.25)
        self.stop()
        raise ProcessStartError(
            f"{self.name} did not become healthy within {self.startup_timeout_s:.0f} s; "
            f"last lines of {self.log_path}:\n{self.log_tail()}"
        )

    def stop(self, timeout_s: float = 20.0) -> None:
        """SIGTERM the process group; SIGKILL it if it has not exited within ``timeout_s``."""
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

    def kill(self) -> None:
        """SIGKILL the process group at once (no clean-up runs: crash tests)."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)

    def log_tail(self, lines: int = 20) -> str:
        if not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


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


def child_env(settings: Settings, *children: tuple[str, BaseSettings]) -> dict[str, str]:
    """This process's environment plus what a child needs to find the same registry, database and
    state directory whatever its working directory, plus each ``(prefix, settings)`` given."""
    env = dict(os.environ)
    env.update(
        {
            "LIFECYCLE_REGISTRY_TRACKING_URI": settings.tracking_uri,
            "LIFECYCLE_STATE_DIR": str(settings.state_path),
            "LIFECYCLE_DB_URL": settings.database_url,
        }
    )
    for prefix, child in children:
        env.update(settings_env(prefix, child))
    return env


def start_on_port(
    process: ManagedProcess, host: str, port: int, *, setting: str, error: type[LifecycleError]
) -> None:
    """Start ``process`` that will listen on ``host:port``.

    :raises error: the port is taken (naming the ``setting`` that moves it), or the start failed.
    """
    if port_open(host, port):
        raise error(f"port {port} is already in use; set {setting} to a free port")
    try:
        process.start()
    except ProcessStartError as exc:
        raise error(str(exc)) from exc


def is_healthy(url: str, timeout_s: float = 2.0) -> bool:
    try:
        return httpx.get(url, timeout=timeout_s).status_code == 200
    except httpx.HTTPError:
        return False


def port_open(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0
