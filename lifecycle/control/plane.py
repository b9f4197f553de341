"""The control plane's composition: controller, leader lease, background loop, webhook registration.

Any number of control planes may run; the one holding the ``control-plane`` lease in the database
is the leader and the only one that decides (ticks, reconciles, answers webhooks). Standbys take
over when the lease expires.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections import OrderedDict

from lifecycle.control.controller import RolloutController
from lifecycle.control.settings import ControlSettings, persistent_secret
from lifecycle.db import session_factory
from lifecycle.errors import LifecycleError
from lifecycle.stack import Services
from monitoring import jobs
from monitoring.alerts import Alerter
from monitoring.channels import AlertSettings, channels_from_settings
from monitoring.detectors import Severity
from monitoring.monitor import DriftCheck, Monitor
from monitoring.scheduler import MonitorScheduler
from monitoring.settings import MonitorSettings
from registry.mlflow import MlflowModelRegistry
from retrain.jobs import RetrainJobs
from retrain.pipeline import Retrainer
from retrain.settings import RetrainSettings
from serving.rollout.policy import RolloutPolicy
from serving.rollout.store import RolloutStore
from serving.rollout.windows import WindowReader

log = logging.getLogger(__name__)

LEADER_LOCK = "control-plane"
WEBHOOK_NAME = "lifecycle-control-plane"
WEBHOOK_EVENTS = ["model_version.created", "model_version_alias.created", "model_version_alias.deleted"]


class ReplayError(LifecycleError):
    """A webhook delivery id that was already processed."""


class ControlPlane:
    def __init__(
        self,
        services: Services,
        control: ControlSettings,
        policy: RolloutPolicy,
        monitoring: MonitorSettings | None = None,
        alerts: AlertSettings | None = None,
        retraining: RetrainSettings | None = None,
    ) -> None:
        self.services = services
        self.control = control
        state = services.settings.state_path
        self.admin_token = persistent_secret(control.admin_token, state / "control-token")
        self.webhook_secret = persistent_secret(control.webhook_secret, state / "webhook-secret")
        sessions = self.sessions = session_factory(services.engine)
        self.store = RolloutStore(sessions)
        self.monitoring = monitoring or MonitorSettings()
        channels = channels_from_settings(alerts or AlertSettings())
        self.alerter = Alerter(sessions, channels, cooldown_s=self.monitoring.alert_cooldown_s)
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.controller = RolloutController(
            self.store, WindowReader(sessions), services.registry, self.alerter, policy,
            actor="control-plane", watch=control.watch,
        )  # fmt: skip
        settings = services.settings
        tracker = MlflowModelRegistry(settings.tracking_uri, experiment=self.monitoring.experiment)
        self.monitor = Monitor(
            sessions, services.registry, tracker, self.alerter,
            self.monitoring, state / "monitor-cache", owner=self.owner,
        )  # fmt: skip
        self.retraining = retraining or RetrainSettings()
        self.retrainer = Retrainer(
            RetrainJobs(sessions), services.locks, services.registry,
            MlflowModelRegistry(settings.tracking_uri, experiment="lifecycle-retrain"), self.alerter,
            self.retraining, sessions, owner=self.owner,
        )  # fmt: skip
        self.scheduler = MonitorScheduler(
            settings.database_url, self.monitor, retrain_cron=self.retraining.cron
        )
        self.monitor.on_drift = self._retrain_on_drift
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

    def on_event(self, entity: str, action: str, data: dict[str, object]) -> str:
        """Act on one verified MLflow event; returns what was done."""
        if not self._leader:
            return "standby: the leader will pick this up when it polls"
        model = str(data.get("name", ""))
        if not model:
            return "ignored: no model name"
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
                        jobs.install_retrain(self._retrain)
                        self.scheduler.start()
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
                        self.scheduler.sync(self.monitor.models())  # models gaining or losing a champion
                    self.controller.tick()
            except Exception:
                log.exception("control loop iteration failed; retrying")
            self._stop.wait(self.control.tick_interval_s)

    def _retrain(self, model: str, trigger: str, trigger_ref: str) -> None:
        if trigger != "manual" and self.retrainer.cooling_down(model):
            log.info("retrain of %s (%s) skipped: within the cool-down of the last one", model, trigger)
            return
        self.retrainer.run(model, trigger, trigger_ref)

    def _retrain_on_drift(self, check: DriftCheck) -> None:
        threshold = self.retraining.on_drift
        if threshold == "never" or (
            threshold == "critical" and check.verdict.severity is not Severity.CRITICAL
        ):
            return
        if self.retrainer.cooling_down(check.model):
            return
        ref = check.run_id or f"drift check {check.id}"
        if self.scheduler.retrain_soon(check.model, "drift", ref):
            log.info("drift on %s (%s): retrain queued", check.model, check.verdict.severity.value)

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
