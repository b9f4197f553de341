"""The composition root: settings → adapters → stages → processes. The one place that knows every
stage; ``lifecycle`` (the CLI) and ``python -m control`` build what they run here.

The stages load torch, Evidently and ONNX Runtime; the builders import them when they are called,
so a CLI command that builds none of them starts quickly.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from control.plane_process import ControlPlaneProcess
from control.services import Services, connect
from control.settings import ControlSettings
from lifecycle.alert_channels import AlertSettings, channels_from_settings
from lifecycle.alerts import Alerter
from lifecycle.db import session_factory
from lifecycle.settings import Settings
from registry.mlflow import MlflowModelRegistry
from registry.server import MlflowServerProcess
from rollout.policy import RolloutPolicy
from serving.bentoml_process import ServingProcess
from serving.settings import ServingSettings

if TYPE_CHECKING:
    from control.plane import ControlPlane
    from monitoring.settings import MonitorSettings
    from retrain.pipeline import Retrainer
    from retrain.settings import RetrainSettings

log = logging.getLogger(__name__)

RETRAIN_EXPERIMENT = "lifecycle-retrain"


def owner_id() -> str:
    """Who holds a lease or runs a job: host, process and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def build_retrainer(
    services: Services, alerter: Alerter, retraining: RetrainSettings, owner: str
) -> Retrainer:
    """The retrain pipeline, as the control plane's jobs and ``lifecycle retrain now`` run it."""
    from retrain.jobs import RetrainJobs  # torch: loaded when a retrainer is built
    from retrain.pipeline import Retrainer

    tracker = MlflowModelRegistry(services.settings.tracking_uri, experiment=RETRAIN_EXPERIMENT)
    sessions = session_factory(services.engine)
    return Retrainer(
        RetrainJobs(sessions), services.locks, services.registry, tracker, alerter, retraining, sessions,
        owner=owner,
    )  # fmt: skip


def local_retrainer(services: Services, owner: str) -> Retrainer:
    """A retrainer running in this process (``lifecycle retrain now``), alerting through the
    configured channels like the control plane's."""
    from retrain.settings import RetrainSettings  # with the retrainer's imports

    alerter = Alerter(session_factory(services.engine), channels_from_settings(AlertSettings()))
    return build_retrainer(services, alerter, RetrainSettings(), owner)


def build_control_plane(
    services: Services,
    control: ControlSettings,
    policy: RolloutPolicy,
    monitoring: MonitorSettings | None = None,
    alerts: AlertSettings | None = None,
    retraining: RetrainSettings | None = None,
) -> ControlPlane:
    """The control plane with every stage it drives: the rollout controller, the drift monitor,
    the retrain pipeline and its triggers, the one scheduler; drift verdicts wired to retraining."""
    # the stages (torch, Evidently, SciPy) load here, in the control-plane process only
    from control.plane import DRIFT_CHECK, RETRAIN, ControlParts, ControlPlane
    from lifecycle.scheduling import Scheduler
    from monitoring.monitor import DriftCheck, Monitor
    from monitoring.settings import MonitorSettings
    from retrain.settings import RetrainSettings
    from retrain.triggers import RetrainTriggers
    from rollout.controller import RolloutController
    from rollout.store import RolloutStore
    from rollout.windows import WindowReader

    settings = services.settings
    owner = owner_id()
    sessions = session_factory(services.engine)
    monitoring = monitoring or MonitorSettings()
    retraining = retraining or RetrainSettings()
    alerter = Alerter(
        sessions, channels_from_settings(alerts or AlertSettings()), cooldown_s=monitoring.alert_cooldown_s
    )
    store = RolloutStore(sessions)
    controller = RolloutController(
        store, WindowReader(sessions), services.registry, alerter, policy, actor="control-plane",
        watch=control.watch,
    )  # fmt: skip
    tracker = MlflowModelRegistry(settings.tracking_uri, experiment=monitoring.experiment)
    monitor = Monitor(
        sessions, services.registry, tracker, alerter, monitoring, settings.state_path / "monitor-cache",
        owner=owner,
    )  # fmt: skip
    retrainer = build_retrainer(services, alerter, retraining, owner)
    scheduler = Scheduler(settings.database_url, {})
    triggers = RetrainTriggers(
        retrainer, retraining,
        queue=lambda model, trigger, ref: scheduler.run_soon(f"retrain-now:{model}", RETRAIN, (model, trigger, ref)),
    )  # fmt: skip
    scheduler.handlers.update({DRIFT_CHECK: monitor.check, RETRAIN: triggers.run})

    def on_drift(check: DriftCheck) -> None:
        triggers.on_drift(check.model, check.verdict.severity, check.run_id or f"drift check {check.id}")

    monitor.on_drift = on_drift
    parts = ControlParts(sessions, store, controller, alerter, monitor, monitoring, scheduler, triggers)
    return ControlPlane(services, control, parts, owner)


@dataclass
class Stack:
    """The processes ``lifecycle up`` runs: the MLflow server (when embedded), the control plane
    and serving."""

    settings: Settings
    mlflow: MlflowServerProcess | None = None
    serving: ServingProcess | None = None
    control: ControlPlaneProcess | None = None
    services: Services | None = None
    urls: dict[str, str] = field(default_factory=dict)

    def start(self) -> Services:
        self.settings.state_path.mkdir(parents=True, exist_ok=True)
        if self.settings.embedded_registry:
            self.mlflow = MlflowServerProcess.from_settings(self.settings)
            self.mlflow.start()
        self.services = connect(self.settings)
        self.urls["MLflow UI"] = self.services.registry.ui_url
        return self.services

    def start_control(self, control: ControlSettings | None = None) -> ControlPlaneProcess:
        """Start the control plane (rollouts, MLflow webhook receiver, admin and status API)."""
        self.control = ControlPlaneProcess(self.settings, control or ControlSettings(), RolloutPolicy())
        self.urls["Control plane"] = f"{self.control.start()}/status"
        return self.control

    def start_serving(self, serving: ServingSettings | None = None) -> ServingProcess:
        """Start the BentoML service (after the registry holds a champion, so it can load one)."""
        self.serving = ServingProcess(self.settings, serving or ServingSettings())
        self.urls["Serving"] = self.serving.start()
        self.urls["Serving status"] = f"{self.serving.url}/admin/status"
        return self.serving

    def stop(self) -> None:
        if self.serving is not None:
            self.serving.stop()
            self.serving = None
        if self.control is not None:
            self.control.stop()
            self.control = None
        if self.services is not None:
            self.services.close()
            self.services = None
        if self.mlflow is not None:
            self.mlflow.stop()
            self.mlflow = None
