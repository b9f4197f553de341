"""The control plane's Prometheus metrics, read from the shared database at scrape time: traffic
shares of active rollouts, the latest drift check's detectors per model, alerts and retrain jobs.
Every replica of the stack reports the same numbers, since they all come from the one database."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Gauge, generate_latest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from lifecycle.db.schema import AlertRow, DriftCheckRow, RetrainJobRow, RolloutRow
from lifecycle.names import ACTIVE_PHASES


def gauges(registry: CollectorRegistry) -> dict[str, Gauge]:
    """The control plane's series, registered in ``registry``."""
    canary = Gauge(
        "lifecycle_rollout_canary_share", "Share of traffic the challenger answers.",
        ("model", "champion", "challenger", "phase"), registry=registry,
    )  # fmt: skip
    mirror = Gauge(
        "lifecycle_rollout_mirror_share", "Share of champion traffic mirrored to the challenger.",
        ("model", "champion", "challenger", "phase"), registry=registry,
    )  # fmt: skip
    p_value = Gauge(
        "lifecycle_drift_p_value", "Latest drift check: p-value of each detector.",
        ("model", "version", "detector"), registry=registry,
    )  # fmt: skip
    statistic = Gauge(
        "lifecycle_drift_statistic", "Latest drift check: test statistic of each detector.",
        ("model", "version", "detector"), registry=registry,
    )  # fmt: skip
    drifting = Gauge(
        "lifecycle_drift_detected", "Latest drift check found drift (1) or not (0).", ("model", "version"),
        registry=registry,
    )  # fmt: skip
    alerts = Gauge(
        "lifecycle_alerts",
        "Alerts raised, by source and severity.",
        ("source", "severity"),
        registry=registry,
    )
    retrains = Gauge(
        "lifecycle_retrain_jobs", "Retrain jobs by status.", ("model", "status"), registry=registry
    )
    return {
        "canary": canary,
        "mirror": mirror,
        "p_value": p_value,
        "statistic": statistic,
        "drifting": drifting,
        "alerts": alerts,
        "retrains": retrains,
    }


def render(sessions: sessionmaker[Session]) -> bytes:
    registry = CollectorRegistry()
    series = gauges(registry)
    canary, mirror, p_value, statistic = (
        series["canary"],
        series["mirror"],
        series["p_value"],
        series["statistic"],
    )
    drifting, alerts, retrains = series["drifting"], series["alerts"], series["retrains"]
    with sessions() as session:
        for r in session.scalars(select(RolloutRow).where(RolloutRow.phase.in_(ACTIVE_PHASES))):
            labels = (r.model_name, r.champion, r.challenger, r.phase)
            canary.labels(*labels).set(r.canary_weight)
            mirror.labels(*labels).set(r.mirror_share)
        latest = (
            select(DriftCheckRow.model_name, func.max(DriftCheckRow.id).label("id"))
            .group_by(DriftCheckRow.model_name)
            .subquery()
        )
        for check in session.scalars(select(DriftCheckRow).join(latest, DriftCheckRow.id == latest.c.id)):
            drifting.labels(check.model_name, check.version).set(float(check.drift))
            for d in check.detectors:
                name = str(d.get("name"))
                p_value.labels(check.model_name, check.version, name).set(float(d.get("p_value", 1.0)))
                statistic.labels(check.model_name, check.version, name).set(float(d.get("statistic", 0.0)))
        counts = select(AlertRow.source, AlertRow.severity, func.count()).group_by(
            AlertRow.source, AlertRow.severity
        )
        for source, severity, n in session.execute(counts):
            alerts.labels(source, severity).set(n)
        jobs = select(RetrainJobRow.model_name, RetrainJobRow.status, func.count()).group_by(
            RetrainJobRow.model_name, RetrainJobRow.status
        )
        for model, status, n in session.execute(jobs):
            retrains.labels(model, status).set(n)
    return generate_latest(registry)
