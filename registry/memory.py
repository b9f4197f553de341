"""An in-memory registry for unit tests of logic built on top of ``ModelRegistry``."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from lifecycle.db.alias_history import AliasHistory
from lifecycle.db.types import utcnow
from lifecycle.errors import UnknownModelError
from lifecycle.local_version import LocalVersion, ModelPackage
from registry.abc import ModelRegistry, ModelVersion, RunTracker


class InMemoryModelRegistry(ModelRegistry):
    def __init__(self, history: AliasHistory | None = None) -> None:
        super().__init__(history)
        self._lock = threading.Lock()
        self._versions: dict[str, list[ModelVersion]] = {}
        self._aliases: dict[str, dict[str, str]] = {}
        self._model_tags: dict[str, dict[str, str]] = {}
        self._packages: dict[tuple[str, str], ModelPackage] = {}

    def list_models(self) -> list[str]:
        with self._lock:
            return sorted(self._versions)

    def list_versions(self, name: str) -> list[ModelVersion]:
        with self._lock:
            if name not in self._versions:
                raise UnknownModelError(f"no registered model {name!r}")
            by_version: dict[str, list[str]] = {}
            for alias, version in self._aliases[name].items():
                by_version.setdefault(version, []).append(alias)
            return [
                replace(v, aliases=tuple(sorted(by_version.get(v.version, [])))) for v in self._versions[name]
            ]

    def aliases(self, name: str) -> dict[str, str]:
        with self._lock:
            if name not in self._aliases:
                raise UnknownModelError(f"no registered model {name!r}")
            return dict(self._aliases[name])

    def register(self, package: ModelPackage, *, run_id: str | None = None) -> ModelVersion:
        with self._lock:
            versions = self._versions.setdefault(package.name, [])
            self._aliases.setdefault(package.name, {})
            created = ModelVersion(
                name=package.name,
                version=str(len(versions) + 1),
                tags=dict(package.tags),
                metrics=dict(package.metrics),
                created_at=utcnow(),
                description=package.description,
                run_id=run_id,
            )
            versions.append(created)
            self._packages[(package.name, created.version)] = package
            return created

    def model_tags(self, name: str) -> dict[str, str]:
        self.aliases(name)  # raises for an unknown model
        with self._lock:
            return dict(self._model_tags.get(name, {}))

    def set_model_tag(self, name: str, key: str, value: str) -> None:
        self.aliases(name)
        with self._lock:
            self._model_tags.setdefault(name, {})[key] = value

    def set_version_tag(self, name: str, version: str, key: str, value: str) -> None:
        target = self.get_version(name, version)
        with self._lock:
            versions = self._versions[name]
            index = versions.index(next(v for v in versions if v.version == target.version))
            versions[index] = replace(versions[index], tags={**versions[index].tags, key: value})

    def _set_alias(self, name: str, alias: str, version: str) -> None:
        with self._lock:
            self._aliases[name][alias] = version

    def _delete_alias(self, name: str, alias: str) -> None:
        with self._lock:
            self._aliases[name].pop(alias, None)

    def _download(self, version: ModelVersion, dest: Path) -> LocalVersion:
        package = self._packages[(version.name, version.version)]
        files_dir = dest / "extra_files"
        files_dir.mkdir(parents=True, exist_ok=True)
        for filename, data in package.model_files.items():
            (dest / filename).write_bytes(data)
        for filename, data in package.files.items():
            (files_dir / filename).write_bytes(data)
        return LocalVersion(version.name, version.version, dest, files_dir)


@dataclass
class RecordedRun:
    name: str
    parent_run_id: str | None
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    artifacts: dict[str, bytes] = field(default_factory=dict)
    status: str = "RUNNING"


class InMemoryRunTracker(RunTracker):
    def __init__(self) -> None:
        self.runs: dict[str, RecordedRun] = {}

    def start_run(
        self, name: str, *, parent_run_id: str | None = None, tags: Mapping[str, str] | None = None
    ) -> str:
        run_id = uuid.uuid4().hex
        self.runs[run_id] = RecordedRun(name, parent_run_id, tags=dict(tags or {}))
        return run_id

    def log_params(self, run_id: str, params: Mapping[str, str]) -> None:
        self.runs[run_id].params.update(params)

    def log_metrics(self, run_id: str, metrics: Mapping[str, float]) -> None:
        self.runs[run_id].metrics.update(metrics)

    def set_tags(self, run_id: str, tags: Mapping[str, str]) -> None:
        self.runs[run_id].tags.update(tags)

    def log_artifact(self, run_id: str, path: Path, artifact_path: str | None = None) -> None:
        key = f"{artifact_path}/{path.name}" if artifact_path else path.name
        self.runs[run_id].artifacts[key] = path.read_bytes()

    def end_run(self, run_id: str, status: str = "FINISHED") -> None:
        self.runs[run_id].status = status

    def run_url(self, run_id: str) -> str:
        return f"memory://runs/{run_id}"
