"""One root error, domain names below it; HTTP status codes are attached only at the edge."""

from __future__ import annotations


class LifecycleError(Exception):
    """Root of every error this project raises on purpose."""


class ConfigurationError(LifecycleError, ValueError):
    """A setting is missing or has a value that cannot work."""


class UnknownModelError(LifecycleError, LookupError):
    """A registered model, built-in example, version or alias does not exist."""


class RegistryUnavailableError(LifecycleError, ConnectionError):
    """The model registry (MLflow server) cannot be reached."""


class ArtifactIntegrityError(LifecycleError):
    """A downloaded artifact does not match the checksum recorded at registration."""


class ExportError(LifecycleError):
    """A model could not be exported, or the export does not reproduce the source model."""


class LockHeldError(LifecycleError):
    """A named lock is held by another owner."""
