"""The composition root: builds the database, registry and processes from settings."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from lifecycle.control.process import ControlPlaneProcess
from lifecycle.control.settings import ControlSettings
from lifecycle.db import create_db_engine, session_factory, upgrade_to_head
from lifecycle.db.alias_history import AliasHistory
from lifecycle.db.locks import Locks
from lifecycle.settings import Settings
from registry.mlflow import MlflowModelRegistry
from registry.server import MlflowServerProcess
from serving.process import ServingProcess
from serving.rollout.policy import RolloutPolicy
from serving.settings import ServingSettings

if TYPE_CHECKING:
    from retrain.pipeline import Retrainer

log = logging.getLogger(__name__)


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


def local_retrainer(services: Services, owner: str) -> Retrainer:
    """A retrainer running in this process (``lifecycle retrain now``), alerting through the
    configured channels like the control plane's."""
    from monitoring.alerts import Alerter
    from monitoring.channels import AlertSettings, channels_from_settings
    from retrain.jobs import RetrainJobs
    from retrain.pipeline import Retrainer
    from retrain.settings import RetrainSettings

    sessions = session_factory(services.engine)
    return Retrainer(
        RetrainJobs(sessions), services.locks, services.registry,
        MlflowModelRegistry(services.settings.tracking_uri, experiment="lifecycle-retrain"),
        Alerter(sessions, channels_from_settings(AlertSettings())), RetrainSettings(), sessions, owner=owner,
    )  # fmt: skip


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
