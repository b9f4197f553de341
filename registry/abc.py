"""The model registry interface. Dependency-free: no MLflow, no web framework."""

from __future__ import annotations

import shutil
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

from lifecycle.db.alias_history import AliasHistory
from lifecycle.errors import LifecycleError, UnknownModelError
from lifecycle.local_version import LocalVersion, ModelPackage
from lifecycle.names import TAG_ARTIFACT_SHA256
from registry.uri import check_alias, check_version, parse_model_uri


@dataclass(frozen=True)
class ModelVersion:
    name: str
    version: str
    aliases: tuple[str, ...] = ()
    tags: Mapping[str, str] = field(default_factory=dict)
    metrics: Mapping[str, float] = field(default_factory=dict)
    run_id: str | None = None
    created_at: datetime | None = None
    description: str = ""

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"

    @property
    def artifact_sha256(self) -> str | None:
        return self.tags.get(TAG_ARTIFACT_SHA256)


class ModelRegistry(ABC):
    """Registered models, their versions, aliases and artifacts.

    Alias changes made through this interface are also written to the alias history (when one is
    given); changes made elsewhere (the MLflow UI) are picked up by :meth:`reconcile_history`.
    """

    def __init__(self, history: AliasHistory | None = None) -> None:
        self._history = history

    # -- reads ---------------------------------------------------------------------------------
    @abstractmethod
    def list_models(self) -> list[str]:
        """Names of all registered models, sorted."""

    @abstractmethod
    def list_versions(self, name: str) -> list[ModelVersion]:
        """All versions of ``name``, oldest first, with their aliases.

        :raises UnknownModelError: when ``name`` is not registered.
        """

    def with_alias(self, alias: str) -> dict[str, str]:
        """``{model: version}`` of every registered model that has ``alias``."""
        found: dict[str, str] = {}
        for name in self.list_models():
            try:
                version = self.aliases(name).get(alias)
            except UnknownModelError:  # deleted since it was listed
                continue
            if version is not None:
                found[name] = version
        return found

    @abstractmethod
    def aliases(self, name: str) -> dict[str, str]:
        """``{alias: version}`` of ``name``.

        :raises UnknownModelError: when ``name`` is not registered.
        """

    def get_version(self, name: str, version: str | int) -> ModelVersion:
        """:raises UnknownModelError: when the model or the version does not exist."""
        wanted = check_version(version)
        for candidate in self.list_versions(name):
            if candidate.version == wanted:
                return candidate
        raise UnknownModelError(f"model {name!r} has no version {wanted}")

    def get_by_alias(self, name: str, alias: str) -> ModelVersion:
        """:raises UnknownModelError: when the model does not exist or no version holds ``alias``."""
        version = self.aliases(name).get(check_alias(alias))
        if version is None:
            raise UnknownModelError(f"model {name!r} has no alias {alias!r}")
        return self.get_version(name, version)

    def resolve(self, uri: str) -> ModelVersion:
        """Resolve ``models:/name/version`` or ``models:/name@alias``."""
        ref = parse_model_uri(uri)
        if ref.alias is not None:
            return self.get_by_alias(ref.name, ref.alias)
        assert ref.version is not None
        return self.get_version(ref.name, ref.version)

    # -- writes --------------------------------------------------------------------------------
    @abstractmethod
    def register(self, package: ModelPackage, *, run_id: str | None = None) -> ModelVersion:
        """Log ``package`` as a new version of ``package.name`` (creating the model if needed).

        With ``run_id``, the model is logged inside that existing run (an optimization child run),
        which already holds the params and metrics; otherwise a registration run is created.
        """

    def set_alias(self, name: str, alias: str, version: str | int, *, actor: str) -> ModelVersion:
        """Point ``alias`` at ``version`` (moving it if another version held it)."""
        target = self.get_version(name, version)
        self._set_alias(name, check_alias(alias), target.version)
        if self._history is not None:
            self._history.record_set(name, alias, target.version, actor)
        return self.get_version(name, target.version)

    def delete_alias(self, name: str, alias: str, *, actor: str) -> None:
        """Remove ``alias``. :raises UnknownModelError: when no version holds it."""
        if check_alias(alias) not in self.aliases(name):
            raise UnknownModelError(f"model {name!r} has no alias {alias!r}")
        self._delete_alias(name, alias)
        if self._history is not None:
            self._history.record_deleted(name, alias, actor)

    @abstractmethod
    def set_version_tag(self, name: str, version: str, key: str, value: str) -> None: ...

    @abstractmethod
    def model_tags(self, name: str) -> dict[str, str]:
        """Tags of the registered model ``name`` (not of a version).

        :raises UnknownModelError: when ``name`` is not registered.
        """

    @abstractmethod
    def set_model_tag(self, name: str, key: str, value: str) -> None: ...

    @abstractmethod
    def _set_alias(self, name: str, alias: str, version: str) -> None: ...

    @abstractmethod
    def _delete_alias(self, name: str, alias: str) -> None: ...

    # -- artifacts -----------------------------------------------------------------------------
    @abstractmethod
    def _download(self, version: ModelVersion, dest: Path) -> LocalVersion: ...

    def download(self, name: str, version: str | int, dest: Path) -> LocalVersion:
        """Fetch a version's model files and our files into ``dest`` and verify the recorded sha256.

        :raises ArtifactIntegrityError: when the model files are not the ones registered.
        """
        target = self.get_version(name, version)
        # into a private staging folder, then one atomic rename: processes that share a cache (two
        # serving replicas on one host) never read each other's half-written files
        dest.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
        try:
            local = self._download(target, staging)
            local.verify(target.artifact_sha256)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        moved = replace(
            local,
            model_dir=dest / local.model_dir.relative_to(staging),
            files_dir=dest / local.files_dir.relative_to(staging),
        )
        try:
            staging.rename(dest)
            return moved
        except OSError:
            pass  # ``dest`` is already filled, by an earlier download or another process
        try:
            moved.verify(target.artifact_sha256)
        except (LifecycleError, ValueError, OSError):
            return local  # not the registered files: keep using our own verified copy
        shutil.rmtree(staging, ignore_errors=True)
        return moved

    # -- history -------------------------------------------------------------------------------
    def reconcile_history(self, name: str, *, actor: str = "observed") -> None:
        """Record alias changes that happened outside this interface (e.g. in the MLflow UI)."""
        if self._history is not None:
            self._history.reconcile(name, self.aliases(name), actor)


class RunTracker(ABC):
    """Experiment runs: params, metrics, tags and artifacts, nested under a parent run."""

    @abstractmethod
    def start_run(
        self, name: str, *, parent_run_id: str | None = None, tags: Mapping[str, str] | None = None
    ) -> str:
        """Create a run (a child of ``parent_run_id`` when given) and return its id."""

    @abstractmethod
    def log_params(self, run_id: str, params: Mapping[str, str]) -> None: ...

    @abstractmethod
    def log_metrics(self, run_id: str, metrics: Mapping[str, float]) -> None: ...

    @abstractmethod
    def set_tags(self, run_id: str, tags: Mapping[str, str]) -> None: ...

    @abstractmethod
    def log_artifact(self, run_id: str, path: Path, artifact_path: str | None = None) -> None: ...

    @abstractmethod
    def end_run(self, run_id: str, status: str = "FINISHED") -> None:
        """``status``: FINISHED, FAILED or KILLED."""

    @abstractmethod
    def run_url(self, run_id: str) -> str: ...
