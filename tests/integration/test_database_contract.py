"""The same contract on SQLite and on the real PostgreSQL server (``db_url`` is parametrized)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, text

from lifecycle.db import session_factory, upgrade_to_head
from lifecycle.db.alias_history import AliasHistory
from lifecycle.db.locks import Locks
from lifecycle.db.migrate import alembic_config
from lifecycle.db.schema import Base

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def engine(migrated_engine: Engine) -> Engine:
    return migrated_engine


def test_migrations_create_the_schema_and_are_idempotent(engine: Engine) -> None:
    upgrade_to_head(engine)
    tables = set(inspect(engine).get_table_names())
    assert {
        "alias_history",
        "locks",
        "prediction_log",
        "rollouts",
        "rollout_verdicts",
        "alerts",
        "drift_checks",
        "feedback",
        "retrain_jobs",
        "alembic_version",
    } <= tables
    head = ScriptDirectory.from_config(alembic_config(engine)).get_current_head()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == head
    for table in Base.metadata.sorted_tables:  # the migrations build what the ORM maps, column for column
        columns = {c["name"] for c in inspect(engine).get_columns(table.name)}
        assert columns == {c.name for c in table.columns}, table.name


def test_alias_history_records_intervals(engine: Engine) -> None:
    history = AliasHistory(session_factory(engine))
    history.record_set("m", "champion", "1", "cli:alice", at=T0)
    history.record_set("m", "champion", "1", "cli:alice", at=T0 + timedelta(seconds=5))  # no change
    history.record_set("m", "champion", "2", "rollout", at=T0 + timedelta(minutes=1))
    history.record_set("m", "challenger", "3", "retrain", at=T0 + timedelta(minutes=2))
    history.record_deleted("m", "challenger", "rollback", at=T0 + timedelta(minutes=3))
    history.record_deleted("m", "challenger", "again", at=T0 + timedelta(minutes=4))  # nothing open

    champion = history.history("m", "champion")
    assert [(i.version, i.set_by, i.cleared_by) for i in champion] == [
        ("1", "cli:alice", "rollout"),
        ("2", "rollout", None),
    ]
    assert champion[0].set_at == T0 and champion[0].cleared_at == T0 + timedelta(minutes=1)
    assert champion[0].set_at.tzinfo is not None
    challenger = history.history("m", "challenger")
    assert len(challenger) == 1 and challenger[0].cleared_by == "rollback"
    assert [(i.alias, i.version) for i in history.current("m")] == [("champion", "2")]
    assert history.history("other") == []


def test_reconcile_picks_up_changes_made_elsewhere(engine: Engine) -> None:
    history = AliasHistory(session_factory(engine))
    history.record_set("m", "champion", "1", "cli")
    history.record_set("m", "challenger", "2", "cli")
    history.reconcile("m", {"champion": "2"}, actor="observed")
    current = {i.alias: (i.version, i.set_by) for i in history.current("m")}
    assert current == {"champion": ("2", "observed")}


def test_locks_are_exclusive_expire_and_renew(engine: Engine) -> None:
    locks = Locks(session_factory(engine))
    assert locks.acquire("leader", "a", ttl_s=10, now=T0)
    assert not locks.acquire("leader", "b", ttl_s=10, now=T0 + timedelta(seconds=5))
    assert locks.acquire("leader", "a", ttl_s=10, now=T0 + timedelta(seconds=5))  # renew
    assert locks.holder("leader", now=T0 + timedelta(seconds=14)) == "a"
    assert locks.holder("leader", now=T0 + timedelta(seconds=16)) is None
    assert locks.acquire("leader", "b", ttl_s=10, now=T0 + timedelta(seconds=16))  # expired: taken over
    assert not locks.release("leader", "a")
    assert locks.release("leader", "b")
    assert locks.acquire("leader", "c", ttl_s=1, now=T0)
    with pytest.raises(ValueError, match="positive"):
        locks.acquire("x", "a", ttl_s=0)


def test_concurrent_contenders_get_exactly_one_winner(engine: Engine) -> None:
    locks = Locks(session_factory(engine))
    barrier = threading.Barrier(8)
    winners: list[str] = []

    def contend(owner: str) -> None:
        barrier.wait()
        if locks.acquire("retrain", owner, ttl_s=60):
            winners.append(owner)

    threads = [threading.Thread(target=contend, args=(f"w{i}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(winners) == 1
    assert locks.holder("retrain") == winners[0]


def test_naive_datetimes_are_refused(engine: Engine) -> None:
    history = AliasHistory(session_factory(engine))
    with pytest.raises(Exception, match="naive datetime"):
        history.record_set("m", "champion", "1", "x", at=datetime(2026, 1, 1))
