"""One drift check of a served model: window from the prediction log, reference from the champion's
registration, detectors, history row, MLflow run (metrics and, when worth it, the HTML report), alert."""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
from sqlalchemy import desc, select
from sqlalchemy.orm import Session, sessionmaker

from lifecycle.alerts import Alert, Alerter
from lifecycle.db.schema import DriftCheckRow, PredictionRow
from lifecycle.db.types import utcnow
from lifecycle.local_version import LocalVersion
from lifecycle.names import CHAMPION, Severity
from lifecycle.runtimes.base import Runner, run_batched
from lifecycle.runtimes.load import load_version
from monitoring.detectors import (
    DetectorResult,
    DriftConfig,
    DriftVerdict,
    Outputs,
    Subspace,
    detect,
)
from monitoring.settings import MonitorSettings
from registry.abc import ModelRegistry, RunTracker

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DriftCheck:
    id: int
    ts: datetime
    model: str
    version: str
    verdict: DriftVerdict
    window_start: datetime | None
    window_end: datetime | None
    seconds: float
    run_id: str | None
    checked_by: str = ""


class Monitor:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        registry: ModelRegistry,
        tracker: RunTracker | None,
        alerter: Alerter,
        settings: MonitorSettings,
        cache_dir: Path,
        *,
        owner: str = "cli",
    ) -> None:
        self.owner = owner
        self.on_drift: Callable[[DriftCheck], object] | None = None
        """Called after a check that found drift (the control plane queues a retrain); errors are logged."""
        self._sessions = sessions
        self._registry = registry
        self._tracker = tracker
        self._alerter = alerter
        self.settings = settings
        self._cache_dir = cache_dir
        self._loaded: dict[tuple[str, str], tuple[LocalVersion, Runner, Subspace]] = {}
        self._lock = threading.Lock()

    def models(self) -> list[str]:
        if self.settings.models:
            return list(self.settings.models)
        return [m for m in self._registry.list_models() if CHAMPION in self._registry.aliases(m)]

    def check(self, model: str) -> DriftCheck:
        """Check ``model``'s champion now; store, log and alert as configured."""
        with self._lock:  # one check at a time per process (scheduler and run-now may overlap)
            started = time.perf_counter()
            champion = self._registry.get_by_alias(model, CHAMPION)
            local, runner, subspace = self._load(model, champion.version, dict(champion.tags))
            ref = local.reference()
            reference = Outputs.from_logits(ref.x, ref.logits)
            x, first, last = self._window(model, champion.version)
            current = (
                Outputs.from_logits(x, run_batched(runner, x))
                if len(x)
                else Outputs(x, np.zeros((0, len(ref.logits[0])), np.float32))
            )
            contract = local.contract
            config = DriftConfig(alpha=self.settings.alpha, min_window=self.settings.min_window)
            verdict = detect(
                reference, current, config, list(contract.feature_names), list(contract.class_names), subspace
            )
            seconds = time.perf_counter() - started
            run_id = self._log_run(
                model, champion.version, verdict, reference, current, list(contract.feature_names), seconds
            )
            check = self._store(model, champion.version, verdict, first, last, seconds, run_id)
            log.info("drift check %s v%s: %s (%.2f s)", model, champion.version, verdict.summary(), seconds)
            if verdict.drift:
                self._alert(check)
                if self.on_drift is not None:
                    try:
                        self.on_drift(check)
                    except Exception:
                        log.exception("drift hook for %s failed", model)
            return check

    def history(self, model: str | None = None, limit: int = 20) -> list[DriftCheck]:
        return drift_history(self._sessions, model, limit)

    def _load(self, model: str, version: str, tags: dict[str, str]) -> tuple[LocalVersion, Runner, Subspace]:
        key = (model, version)
        if key not in self._loaded:
            local = self._registry.download(model, version, self._cache_dir / model / version)
            runner = load_version(local, tags, threads=1)
            subspace = Subspace.fit(local.splits().x_train)  # the reconstruction detector's subspace
            self._loaded = {key: (local, runner, subspace)}  # keep only the current champion
        return self._loaded[key]

    def _window(self, model: str, version: str) -> tuple[np.ndarray, datetime | None, datetime | None]:
        since = utcnow() - timedelta(minutes=self.settings.window_minutes)
        p = PredictionRow
        query = (
            select(p.features, p.ts)
            .where(
                p.model_name == model,
                p.version == version,
                p.role == CHAMPION,
                p.error.is_(None),
                p.ts >= since,
            )
            .order_by(desc(p.id))
            .limit(self.settings.window_size)
        )
        with self._sessions() as session:
            rows = session.execute(query).all()
        if not rows:
            return np.zeros((0, 0), np.float32), None, None
        x = np.asarray([r[0] for r in rows], dtype=np.float32)
        return x, rows[-1][1], rows[0][1]

    def _log_run(
        self,
        model: str,
        version: str,
        verdict: DriftVerdict,
        reference: Outputs,
        current: Outputs,
        features: list[str],
        seconds: float,
    ) -> str | None:
        if self._tracker is None:
            return None
        tracker = self._tracker
        try:
            run_id = tracker.start_run(
                f"drift-{model}-v{version}",
                tags={"lifecycle.model": model, "lifecycle.version": version, "lifecycle.severity": verdict.severity.value,
                      "lifecycle.drift": str(verdict.drift).lower(), "lifecycle.summary": verdict.summary()[:4000]},
            )  # fmt: skip
            metrics: dict[str, float] = {"n_current": verdict.n_current, "n_reference": verdict.n_reference,
                                         "drift": float(verdict.drift), "check_seconds": seconds}  # fmt: skip
            for d in verdict.detectors:
                metrics[f"{d.name}_p_value"] = d.p_value
                metrics[f"{d.name}_statistic"] = d.statistic
                metrics[f"{d.name}_drift"] = float(d.drift)
            tracker.log_metrics(run_id, metrics)
            wanted = self.settings.report == "always" or (
                self.settings.report == "on_drift" and verdict.drift
            )
            if wanted and verdict.detectors:
                from monitoring.evidently_report import render_report  # Evidently loads only to render

                with tempfile.TemporaryDirectory() as tmp:
                    path = render_report(
                        reference.x,
                        current.x,
                        features,
                        (reference.confidence, current.confidence),
                        Path(tmp) / "drift_report.html",
                    )
                    tracker.log_artifact(run_id, path, "report")
            tracker.end_run(run_id)
            return run_id
        except Exception:  # the check itself is kept even when MLflow is down
            log.exception("logging drift check of %s v%s to MLflow failed", model, version)
            return None

    def _store(
        self,
        model: str,
        version: str,
        verdict: DriftVerdict,
        first: datetime | None,
        last: datetime | None,
        seconds: float,
        run_id: str | None,
    ) -> DriftCheck:
        detectors = [
            {
                "name": d.name,
                "p_value": d.p_value,
                "threshold": d.threshold,
                "drift": d.drift,
                "statistic": d.statistic,
                "drifted": d.drifted[:20],
            }
            for d in verdict.detectors
        ]
        with self._sessions.begin() as session:
            row = DriftCheckRow(
                ts=utcnow(), model_name=model, version=version, window_start=first, window_end=last,
                n_reference=verdict.n_reference, n_current=verdict.n_current, drift=verdict.drift,
                severity=verdict.severity.value, summary=verdict.summary(), detectors=detectors, seconds=seconds,
                mlflow_run_id=run_id, checked_by=self.owner,
            )  # fmt: skip
            session.add(row)
            session.flush()
            return _to_check(row)

    def _alert(self, check: DriftCheck) -> None:
        severity = Severity.CRITICAL if check.verdict.severity is Severity.CRITICAL else Severity.WARNING
        self._alerter.raise_alert(
            Alert(
                source="drift",
                severity=severity,
                key=f"drift:{check.model}:v{check.version}:{severity.value}",
                title=f"{check.model} v{check.version}: {severity.value} drift",
                message=check.verdict.summary(),
                details={
                    "check_id": check.id,
                    "mlflow_run_id": check.run_id,
                    "detectors": [d.name for d in check.verdict.detectors if d.drift],
                },
            )
        )


def drift_history(
    sessions: sessionmaker[Session], model: str | None = None, limit: int = 20
) -> list[DriftCheck]:
    """Stored checks, newest first."""
    query = select(DriftCheckRow).order_by(desc(DriftCheckRow.id)).limit(limit)
    if model is not None:
        query = query.where(DriftCheckRow.model_name == model)
    with sessions() as session:
        return [_to_check(row) for row in session.scalars(query)]


def _to_check(row: DriftCheckRow) -> DriftCheck:
    detectors = [
        DetectorResult(
            str(d["name"]),
            float(d["p_value"]),
            float(d["threshold"]),
            bool(d["drift"]),
            float(d["statistic"]),
            list(d["drifted"]),
        )
        for d in row.detectors
    ]
    verdict = DriftVerdict(
        row.n_reference, row.n_current, Severity(row.severity), detectors, "" if detectors else row.summary
    )
    return DriftCheck(
        row.id,
        row.ts,
        row.model_name,
        row.version,
        verdict,
        row.window_start,
        row.window_end,
        row.seconds,
        row.mlflow_run_id,
        row.checked_by,
    )
