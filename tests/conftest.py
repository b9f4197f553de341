"""Shared fixtures: real PostgreSQL databases, a real MLflow server, small trained models.

Tests are marked unit / integration / e2e by the folder they live in.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from lifecycle.data import DataSplits
from lifecycle.db import create_db_engine, upgrade_to_head
from lifecycle.examples import get_example
from lifecycle.local_version import ModelPackage
from lifecycle.version_builder import package_torch_model
from registry.server import MlflowServerProcess

ROOT = Path(__file__).parent
POSTGRES_ADMIN_URL = os.environ.get(
    "LIFECYCLE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        folder = Path(str(item.fspath)).relative_to(ROOT).parts[0]
        if folder in ("unit", "integration", "e2e", "gpu"):
            item.add_marker(getattr(pytest.mark, folder))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """A new, empty PostgreSQL database on the server at LIFECYCLE_TEST_POSTGRES_URL, dropped afterwards."""
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"lifecycle_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        admin.dispose()
        pytest.fail(
            f"PostgreSQL at {POSTGRES_ADMIN_URL} is required (set LIFECYCLE_TEST_POSTGRES_URL): {exc}"
        )
    try:
        yield make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Every database contract test runs on SQLite and on the real PostgreSQL server, each time on a
    fresh database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'lifecycle.db'}"
        return
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture
def migrated_engine(db_url: str) -> Iterator[Engine]:
    """An engine on ``db_url`` with the schema at the newest migration."""
    engine = create_db_engine(db_url)
    upgrade_to_head(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServerProcess]:
    """One real MLflow tracking server process (SQLite backend, local artifacts) for the session."""
    state = tmp_path_factory.mktemp("mlflow-state")
    server = MlflowServerProcess(
        host="127.0.0.1",
        port=free_port(),
        backend_uri=f"sqlite:///{state / 'mlflow.db'}",
        artifacts_dir=state / "mlartifacts",
        state_dir=state,
    )
    server.start()
    try:
        yield server
    finally:
        server.stop(timeout_s=5)


@pytest.fixture(scope="session")
def tabular_data() -> DataSplits:
    return get_example("breast-cancer-mlp").load_data(0)


@pytest.fixture(scope="session")
def tabular_package(tabular_data: DataSplits) -> ModelPackage:
    """A small trained tabular classifier, packaged (trains in about a second)."""
    example = get_example("breast-cancer-mlp")
    module, architecture, _ = example.train(tabular_data, seed=0)
    return package_torch_model(
        "tabular", module, tabular_data, architecture=architecture, tags={"lifecycle.role": "model"}
    )
