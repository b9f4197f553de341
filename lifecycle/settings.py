"""Typed settings, one class per concern, read from ``LIFECYCLE_*`` environment variables.

Every URL can be overridden, so that production points at PostgreSQL and a remote MLflow while
``make run`` keeps everything in one state directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from annotated_types import Ge, Gt, Le
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class RegistrySettings(BaseSettings):
    """Where the MLflow tracking server and model registry live."""

    model_config = SettingsConfigDict(env_prefix="LIFECYCLE_REGISTRY_", extra="forbid")

    tracking_uri: str | None = None
    """URI of a remote MLflow server. Unset: an embedded server is started on ``host:port``."""
    host: str = "127.0.0.1"
    """Interface the embedded MLflow server binds to."""
    port: Annotated[int, Ge(1), Le(65535)] = 5000
    """Port of the embedded MLflow server (its UI is served there too)."""
    workers: Annotated[int, Ge(1), Le(16)] = 1
    """Worker processes of the embedded MLflow server."""
    startup_timeout_s: Annotated[float, Gt(0)] = 90.0
    """How long to wait for the embedded server to answer ``/health``."""
    request_timeout_s: Annotated[float, Gt(0)] = 30.0
    """HTTP timeout of each call the registry adapter makes."""
    experiment: str = "lifecycle"
    """MLflow experiment that training and registration runs are logged to."""


class DatabaseSettings(BaseSettings):
    """Our own SQL database: alias history, rollout state, prediction log, drift results, locks."""

    model_config = SettingsConfigDict(env_prefix="LIFECYCLE_DB_", extra="forbid")

    url: str | None = None
    """SQLAlchemy URL, e.g. ``postgresql+psycopg://user@host:5432/lifecycle``.
    Unset: a SQLite file in the state directory."""
    echo: bool = False
    """Log every SQL statement (debugging)."""


class TrainingSettings(BaseSettings):
    """Reference-model training."""

    model_config = SettingsConfigDict(env_prefix="LIFECYCLE_TRAIN_", extra="forbid")

    seed: int = 0
    """Seed for data splits, initialisation and batch order."""
    threads: Annotated[int, Ge(0)] = 0
    """torch intra-op threads for training; 0 keeps torch's default."""


class Settings(BaseSettings):
    """Root settings: the state directory plus one object per concern."""

    model_config = SettingsConfigDict(env_prefix="LIFECYCLE_", extra="ignore")

    state_dir: Path = Path(".lifecycle")
    """Holds the embedded SQLite databases, the MLflow artifact store and process logs."""
    registry: RegistrySettings = Field(default_factory=RegistrySettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    training: TrainingSettings = Field(default_factory=TrainingSettings)

    @property
    def state_path(self) -> Path:
        return self.state_dir.expanduser().resolve()

    @property
    def embedded_registry(self) -> bool:
        """True when we start the MLflow server ourselves."""
        return self.registry.tracking_uri is None

    @property
    def tracking_uri(self) -> str:
        if self.registry.tracking_uri is not None:
            return self.registry.tracking_uri.rstrip("/")
        return f"http://{self.registry.host}:{self.registry.port}"

    @property
    def database_url(self) -> str:
        if self.database.url is not None:
            return self.database.url
        return f"sqlite:///{self.state_path / 'lifecycle.db'}"

    @property
    def mlflow_backend_uri(self) -> str:
        return f"sqlite:///{self.state_path / 'mlflow.db'}"

    @property
    def mlflow_artifacts_dir(self) -> Path:
        return self.state_path / "mlartifacts"

    @property
    def logs_dir(self) -> Path:
        return self.state_path / "logs"
