"""The control plane: leader lease, the background loop that drives the rollout controller and the
scheduler, webhook registration.

Any number of control planes may run; the one holding the ``control-plane`` lease in the database
is the leader and the only one that decides (ticks, reconciles, answers webhooks). Standbys take
over when the lease expires.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from control.services import Services
from control.settings import ControlSettings, persistent_secret
from lifecycle.alerts import Alerter
from lifecycle.errors import LifecycleError
from lifecycle.scheduling import Scheduler
from monitoring.monitor import Monitor
from monitoring.settings import MonitorSettings
from retrain.triggers import RetrainTriggers
from rollout.controller import RolloutController
from rollout.store import RolloutStore

log = logging.getLogger(__name__)

LEADER_LOCK = "control-plane"
WEBHOOK_NAME = "lifecycle-control-plane"
WEBHOOK_EVENTS = ["model_version.created", "model_version_alias.created", "model_version_alias.deleted"]
ALIAS_ACTOR = "mlflow"
"""Who set an alias, as the alias history records a change MLflow reported (it does not say who)."""
DRIFT_CHECK, RETRAIN = "drift-check", "retrain"
"""The scheduler's job kinds."""
DRIFT_JOBS, RETRAIN_CRON_JOBS = "drift-monitor", "retrain-cron"
"""Prefixes of the stored jobs' ids (``drift-monitor:<model>``)."""


class ReplayError(LifecycleError):
    """A webhook delivery id that was already processed."""


@dataclass
class ControlParts:
    """What the control plane runs, built by the composition root (``control.compose``)."""

    sessions: sessionmaker[Session]
    store: RolloutStore
    controller: RolloutController
    alerter: Alerter
    monitor: Monitor
    monitoring: MonitorSettings
    scheduler: Scheduler
    triggers: RetrainTriggers


class ControlPlane:
    def __init__(self, services: Services, control: ControlSettings, parts: ControlParts, owner: str) -> None:
        self.services = services
        self.control = control
        state = services.settings.state_path
        self.admin_token = persistent_secret(control.admin_token, state / "control-token")
        self.webhook_secret = persistent_secret(control.webhook_secret, state / "webhook-secret")
        self.owner = owner
        self.sessions = parts.sessions
        self.store = parts.store
        self.controller = parts.controller
        self.alerter = parts.alerter
        self.monitor = parts.monitor
        self.monitoring = parts.monitoring
        self.scheduler = parts.scheduler
        self.triggers = parts.triggers
        self.webhook_status = "not registered yet"
        self._leader = False
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._seen_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def is_leader(self) -> bool:
        return self._leader

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="control-loop", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        self.scheduler.stop()
        if self._leader:
            self.services.locks.release(LEADER_LOCK, self.owner)

    def remember_delivery(self, delivery_id: str) -> None:
        """:raises ReplayError: when ``delivery_id`` was seen before (bounded memory; older ids
        are also refused by the timestamp tolerance)."""
        with self._seen_lock:
            if delivery_id in self._seen:
                raise ReplayError(f"delivery {delivery_id} was already processed")
            self._seen[delivery_id] = None
            while len(self._seen) > 10_000:
                self._seen.popitem(last=False)

    def on_event(self, entity: str, action: str, data: dict[str, object], at: datetime | None = None) -> str:
        """Act on one verified MLflow event sent at ``at``; returns what was done. An alias change
        enters the alias history at once, with MLflow's time (the change may come from its UI; one made
        through this service is already there, and recording it again changes nothing)."""
        model = str(data.get("name", ""))
        if not model:
            return "ignored: no model name"
        if entity == "model_version_alias" and data.get("alias"):
            alias = str(data["alias"])
            if action == "created" and data.get("version") is not None:
                self.services.history.record_set(model, alias, str(data["version"]), ALIAS_ACTOR, at=at)
            elif action == "deleted":
                self.services.history.record_deleted(model, alias, ALIAS_ACTOR, at=at)
        if not self._leader:
            return "standby: the leader will pick this up when it polls"
        if entity == "model_version" and action == "created":
            self.controller.on_version_created(model, str(data.get("version")))
        rollout = self.controller.reconcile(model)
        return f"reconciled {model}: " + (rollout.describe() if rollout else "no active rollout")

    def _loop(self) -> None:
        last_poll = 0.0
        last_sync = time.monotonic()
        ttl = self.control.leader_ttl_s
        last_lease = -ttl
        while not self._stop.is_set():
            try:
                was_leader = self._leader
                # a lease write every ttl/3, not every tick: a held lease still has 2/3 of its ttl left
                if time.monotonic() - last_lease >= ttl / 3:
                    last_lease = time.monotonic()
                    self._leader = self.services.locks.acquire(LEADER_LOCK, self.owner, ttl)
                if self._leader and not was_leader:
                    log.info("control plane %s is the leader", self.owner)
                    self._register_webhook()
                    if self.monitoring.enabled:
                        self.scheduler.start()
                        self.sync_jobs()
                    last_poll = 0.0  # resume: reconcile everything at once
                elif was_leader and not self._leader:
                    log.warning("control plane %s lost the leader lease; stopping the scheduler", self.owner)
                    self.scheduler.stop()
                if self._leader:
                    interval = self.control.poll_interval_s
                    if self.webhook_status != "registered":
                        interval = min(interval, 2.0)
                    if time.monotonic() - last_poll >= interval:
                        last_poll = time.monotonic()
                        self.controller.reconcile_all()
                    if self.scheduler.running and time.monotonic() - last_sync >= 30.0:
                        last_sync = time.monotonic()
                        self.sync_jobs()  # models gaining or losing a champion
                    self.controller.tick()
            except Exception:
                log.exception("control loop iteration failed; retrying")
            self._stop.wait(self.control.tick_interval_s)

    def sync_jobs(self) -> None:
        """One drift-check job per monitored model and, with a retrain cron, one retrain job each."""
        models = self.monitor.models()
        self.scheduler.keep_interval_jobs(
            DRIFT_JOBS, DRIFT_CHECK, {m: (m,) for m in models}, self.monitoring.interval_s
        )
        cron = self.triggers.settings.cron
        self.scheduler.keep_cron_jobs(
            RETRAIN_CRON_JOBS, RETRAIN, {m: (m, "schedule", cron or "") for m in models}, cron
        )

    def _register_webhook(self) -> None:
        if not self.control.webhooks:
            self.webhook_status = "disabled (polling)"
            return
        url = f"{self.control.url()}/webhooks/mlflow"
        try:
            hook = self.services.registry.ensure_webhook(
                WEBHOOK_NAME, url, WEBHOOK_EVENTS, self.webhook_secret
            )
            self.webhook_status = "registered"
            log.info("MLflow webhook %s -> %s", hook, url)
        except LifecycleError as exc:
            self.webhook_status = f"unavailable, polling every 2 s: {exc}"
            log.warning("MLflow webhook not registered (%s); falling back to polling", exc)
