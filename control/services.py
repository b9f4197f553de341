"""The adapters every command and process works with — database, alias history, locks, registry —
opened from settings."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Engine

from lifecycle.db import create_db_engine, session_factory, upgrade_to_head
from lifecycle.db.alias_history import AliasHistory
from lifecycle.db.locks import Locks
from lifecycle.errors import RegistryUnavailableError
from lifecycle.settings import Settings
from registry.mlflow import MlflowModelRegistry
from registry.server import MlflowServerProcess


@dataclass
class Services:
    """What every command and process works with, wired once."""

    settings: Settings
    engine: Engine
    history: AliasHistory
    locks: Locks
    registry: MlflowModelRegistry

    def close(self) -> None:
        self.engine.dispose()


def connect(settings: Settings, *, check_registry: bool = True) -> Services:
    """Open the database (migrated to head) and the registry client.

    :raises RegistryUnavailableError: when ``check_registry`` and the MLflow server does not answer.
    """
    engine = create_db_engine(settings.database_url, echo=settings.database.echo)
    upgrade_to_head(engine)
    sessions = session_factory(engine)
    history = AliasHistory(sessions)
    registry = MlflowModelRegistry(
        settings.tracking_uri,
        experiment=settings.registry.experiment,
        history=history,
        timeout_s=settings.registry.request_timeout_s,
    )
    if check_registry:
        registry.check_reachable()
    return Services(settings, engine, history, Locks(sessions), registry)


@contextmanager
def open_services(
    settings: Settings, *, on_embedded_start: Callable[[str], None] | None = None
) -> Iterator[Services]:
    """:func:`connect` for one command. With the embedded registry (no tracking URI configured) and
    no server answering, start the embedded MLflow server for the duration and stop it afterwards.

    :raises RegistryUnavailableError: when a configured remote server does not answer, or the
        embedded one cannot start.
    """
    server: MlflowServerProcess | None = None
    try:
        services = connect(settings)
    except RegistryUnavailableError:
        if not settings.embedded_registry:
            raise
        settings.state_path.mkdir(parents=True, exist_ok=True)
        server = MlflowServerProcess.from_settings(settings)
        url = server.start()
        if on_embedded_start is not None:
            on_embedded_start(url)
        services = connect(settings)
    try:
        yield services
    finally:
        services.close()
        if server is not None:
            server.stop()
