"""The embedded MLflow server process: start-up errors, webhook environment, real signed deliveries."""

from __future__ import annotations

import json
import queue
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from mlflow import MlflowClient

from lifecycle.errors import RegistryUnavailableError
from lifecycle.local_version import ModelPackage
from registry.mlflow import MlflowModelRegistry
from registry.server import MlflowServerProcess
from registry.webhooks import verify
from tests.conftest import free_port


def test_a_taken_port_is_reported(mlflow_server: MlflowServerProcess, tmp_path: Path) -> None:
    clash = MlflowServerProcess(
        host="127.0.0.1", port=mlflow_server.port, backend_uri=f"sqlite:///{tmp_path / 'm.db'}",
        artifacts_dir=tmp_path / "a", state_dir=tmp_path,
    )  # fmt: skip
    with pytest.raises(RegistryUnavailableError, match="already in use"):
        clash.start()


def test_an_unreachable_registry_is_reported_quickly() -> None:
    registry = MlflowModelRegistry(f"http://127.0.0.1:{free_port()}")
    started = time.monotonic()
    with pytest.raises(RegistryUnavailableError, match="not reachable"):
        registry.check_reachable()
    assert time.monotonic() - started < 5


def test_webhook_key_is_persistent_and_private(mlflow_server: MlflowServerProcess) -> None:
    key_file = mlflow_server.state_dir / "webhook-encryption.key"
    assert key_file.stat().st_mode & 0o077 == 0
    assert mlflow_server._webhook_key() == key_file.read_text().strip()


@pytest.fixture
def receiver() -> Iterator[tuple[str, queue.Queue[tuple[dict[str, str], bytes]]]]:
    deliveries: queue.Queue[tuple[dict[str, str], bytes]] = queue.Queue()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            deliveries.put((dict(self.headers.items()), body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", deliveries
    server.shutdown()


def test_alias_change_is_delivered_as_a_signed_webhook_to_loopback(
    mlflow_server: MlflowServerProcess,
    tabular_package: ModelPackage,
    receiver: tuple[str, queue.Queue[tuple[dict[str, str], bytes]]],
) -> None:
    """The server environment admits http:// loopback receivers and signs deliveries."""
    url, deliveries = receiver
    client = MlflowClient(mlflow_server.url)
    hook = client.create_webhook(
        name=f"test-{uuid.uuid4().hex[:6]}", url=url, secret="s3cr3t",
        events=["model_version_alias.created"],
    )  # fmt: skip
    try:
        registry = MlflowModelRegistry(mlflow_server.url, experiment="webhook-tests")
        name = f"hooked-{uuid.uuid4().hex[:6]}"
        version = registry.register(replace(tabular_package, name=name))
        time.sleep(1.5)  # the server caches its webhook list for MLFLOW_WEBHOOK_CACHE_TTL=1 s
        registry.set_alias(name, "challenger", version.version, actor="test")
        while True:
            headers, body = deliveries.get(timeout=30)
            payload = json.loads(body)
            if payload["data"].get("name") == name:
                break
        assert verify("s3cr3t", headers, body)
        assert payload["entity"] == "model_version_alias" and payload["action"] == "created"
        assert payload["data"] == {"name": name, "alias": "challenger", "version": version.version}
    finally:
        client.delete_webhook(hook.webhook_id)


FRESH_DOWNLOAD = """
import sys, tempfile
from pathlib import Path
from registry.mlflow import MlflowModelRegistry
registry = MlflowModelRegistry(sys.argv[1])
version = registry.get_by_alias(sys.argv[2], "champion")
print(registry.download(version.name, version.version, Path(tempfile.mkdtemp())).contract.n_features)
"""


def test_a_fresh_process_downloads_by_alias(
    mlflow_server: MlflowServerProcess, tabular_package: ModelPackage, tmp_path: Path
) -> None:
    """Regression: MLflow resolves a version's models:/m-... source through the process-global
    tracking URI; a process that never registered anything must still find it."""
    import subprocess
    import sys

    registry = MlflowModelRegistry(mlflow_server.url, experiment="fresh-process")
    name = f"fresh-{uuid.uuid4().hex[:6]}"
    version = registry.register(replace(tabular_package, name=name))
    registry.set_alias(name, "champion", version.version, actor="test")
    done = subprocess.run(
        [sys.executable, "-c", FRESH_DOWNLOAD, mlflow_server.url, name],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "30"
    assert not (tmp_path / "mlflow.db").exists(), "the client fell back to a local SQLite store"
