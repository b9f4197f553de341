"""An in-memory registry for unit tests of logic built on top of ``ModelRegistry``."""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

from lifecycle.db.alias_history import AliasHistory
from lifecycle.db.types import utcnow
from lifecycle.errors import UnknownModelError
from lifecycle.package import ONNX_FILE, LocalVersion, ModelPackage
from registry.abc import ModelRegistry, ModelVersion


class InMemoryModelRegistry(ModelRegistry):
    def __init__(self, history: AliasHistory | None = None) -> None:
        super().__init__(history)
        self._lock = threading.Lock()
        self._versions: dict[str, list[ModelVersion]] = {}
        self._aliases: dict[str, dict[str, str]] = {}
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

    def register(self, package: ModelPackage) -> ModelVersion:
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
            )
            versions.append(created)
            self._packages[(package.name, created.version)] = package
            return created

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
        (dest / ONNX_FILE).write_bytes(package.onnx_model)
        for filename, data in package.files.items():
            (files_dir / filename).write_bytes(data)
        return LocalVersion(version.name, version.version, dest / ONNX_FILE, files_dir)
