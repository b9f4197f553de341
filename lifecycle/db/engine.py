"""Engine construction with the per-backend settings that matter for concurrent use."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from lifecycle.errors import ConfigurationError


def create_db_engine(url: str, *, echo: bool = False) -> Engine:
    """Create an engine for ``url``; for SQLite, create the parent folder and enable WAL.

    :raises ConfigurationError: when ``url`` is not a SQLAlchemy URL.
    """
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise ConfigurationError(f"database URL {url!r} is not a valid SQLAlchemy URL: {exc}") from exc
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, echo=echo, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(parsed, echo=echo, pool_pre_ping=True)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers (serving replicas, CLI) proceed while the control plane writes.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # In WAL mode NORMAL skips the fsync per commit; a committed transaction still survives a crash of
    # the process (only an OS crash or power loss can drop the last ones). FULL made the prediction-log
    # writer the largest CPU consumer of the serving worker.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
