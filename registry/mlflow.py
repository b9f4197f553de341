"""``ModelRegistry`` on an MLflow tracking server (the only module that imports ``mlflow``)."""

from __future__ import annotations

import logging
import os
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import mlflow
import mlflow.onnx
import onnx
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.types import Schema
from mlflow.types import TensorSpec as MlflowTensorSpec

from lifecycle.contract import ModelContract, TensorSpec
from lifecycle.db.alias_history import AliasHistory
from lifecycle.errors import LifecycleError, RegistryUnavailableError, UnknownModelError
from lifecycle.local_version import LocalVersion, ModelPackage
from lifecycle.names import TAG_RUN_ID
from registry.abc import ModelRegistry, ModelVersion, RunTracker
from registry.server import is_healthy
from registry.uri import check_version

log = logging.getLogger(__name__)

# The fluent API (mlflow.start_run, mlflow.onnx.log_model) reads a process-global tracking URI.
_FLUENT_LOCK = threading.Lock()


class MlflowModelRegistry(ModelRegistry, RunTracker):
    def __init__(
        self,
        tracking_uri: str,
        *,
        experiment: str = "lifecycle",
        history: AliasHistory | None = None,
        timeout_s: float = 30.0,
        max_retries: int = 2,
    ) -> None:
        super().__init__(history)
        self.tracking_uri = tracking_uri.rstrip("/")
        self.experiment = experiment
        # MLflow's client retries failed calls with back-off for minutes by default (7 retries);
        # a control plane must notice an unreachable registry in seconds.
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", str(max_retries))
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(int(timeout_s)))
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        self._client = MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)

    # -- connectivity --------------------------------------------------------------------------
    def check_reachable(self) -> None:
        """:raises RegistryUnavailableError: when the tracking server does not answer ``/health``."""
        if self.tracking_uri.startswith(("http://", "https://")) and not is_healthy(self.tracking_uri):
            raise RegistryUnavailableError(
                f"MLflow server at {self.tracking_uri} is not reachable; start the stack with "
                "`lifecycle up`, or point LIFECYCLE_REGISTRY_TRACKING_URI at a running server"
            )

    @property
    def ui_url(self) -> str:
        return self.tracking_uri

    # -- webhooks ------------------------------------------------------------------------------
    def ensure_webhook(self, name: str, url: str, events: list[str], secret: str) -> str:
        """Create the webhook ``name`` or bring it up to date (url, events, secret); returns its id.
        Idempotent: a restarted control plane updates its one webhook instead of adding another.

        :raises RegistryUnavailableError: the server refuses webhooks (e.g. http:// or loopback
            targets not allowed, see MLFLOW_WEBHOOK_ALLOWED_SCHEMES / _ALLOW_PRIVATE_IPS).
        """
        wanted: Any = list(events)  # MLflow types these as a Literal of event names
        try:
            existing = [w for w in _paged_webhooks(self._client) if w.name == name]
            if existing:
                hook = self._client.update_webhook(
                    existing[0].webhook_id, url=url, events=wanted, secret=secret, status="ACTIVE"
                )
                for extra in existing[1:]:
                    self._client.delete_webhook(extra.webhook_id)
            else:
                hook = self._client.create_webhook(name=name, url=url, events=wanted, secret=secret)
            return str(hook.webhook_id)
        except MlflowException as exc:
            raise RegistryUnavailableError(
                f"MLflow at {self.tracking_uri} refused webhook {name!r}: {exc}"
            ) from exc
        except (ConnectionError, OSError) as exc:
            raise RegistryUnavailableError(f"MLflow at {self.tracking_uri} is not reachable: {exc}") from exc

    # -- reads ---------------------------------------------------------------------------------
    def list_models(self) -> list[str]:
        with self._errors():
            return sorted(m.name for m in _paged(self._client.search_registered_models))

    def with_alias(self, alias: str) -> dict[str, str]:
        # one paged search: MLflow answers each registered model with its aliases
        with self._errors():
            models = list(_paged(self._client.search_registered_models))
        return {m.name: str(m.aliases[alias]) for m in models if alias in (m.aliases or {})}

    def aliases(self, name: str) -> dict[str, str]:
        with self._errors(name):
            return {alias: str(v) for alias, v in self._client.get_registered_model(name).aliases.items()}

    def list_versions(self, name: str) -> list[ModelVersion]:
        aliases = self.aliases(name)
        with self._errors(name):
            found = list(_paged(self._client.search_model_versions, f"name = '{_quote(name)}'"))
        found.sort(key=lambda mv: int(mv.version))
        return [self._to_version(mv, aliases) for mv in found]

    def get_version(self, name: str, version: str | int) -> ModelVersion:
        wanted = check_version(version)
        aliases = self.aliases(name)
        with self._errors(name, wanted):
            mv = self._client.get_model_version(name, wanted)
        return self._to_version(mv, aliases)

    # -- writes --------------------------------------------------------------------------------
    def register(self, package: ModelPackage, *, run_id: str | None = None) -> ModelVersion:
        with self._errors(package.name), _FLUENT_LOCK, tempfile.TemporaryDirectory() as tmp:
            mlflow.set_tracking_uri(self.tracking_uri)
            mlflow.set_registry_uri(self.tracking_uri)
            extra_dir = Path(tmp) / "extra"
            extra_dir.mkdir()
            for filename, data in package.files.items():
                (extra_dir / filename).write_bytes(data)
            if run_id is None:
                context = mlflow.start_run(
                    experiment_id=self.experiment_id(), run_name=f"register-{package.name}"
                )
            else:
                context = mlflow.start_run(run_id=run_id)
            with context as run:
                if run_id is None:  # a caller's own run already holds its params and metrics
                    mlflow.log_params(package.params)
                    mlflow.log_metrics(package.metrics)
                    mlflow.set_tags(package.tags)
                if package.format == "onnx":
                    version = self._log_onnx(package, sorted(extra_dir.iterdir()))
                else:
                    version = self._log_files(package, Path(tmp) / "model", extra_dir, run.info.run_id)
            for key, value in {**package.tags, TAG_RUN_ID: run.info.run_id}.items():
                self._client.set_model_version_tag(package.name, version, key, value)
            if package.description:
                self._client.update_model_version(package.name, version, package.description)
        log.info("registered %s version %s (run %s)", package.name, version, run.info.run_id)
        return self.get_version(package.name, version)

    def _log_onnx(self, package: ModelPackage, extra_files: list[Path]) -> str:
        """ONNX flavor: the version is also servable by ``mlflow models serve``."""
        info = mlflow.onnx.log_model(
            onnx_model=onnx.load_model_from_string(package.onnx_model),
            name="model",
            registered_model_name=package.name,
            signature=_signature(package.contract),
            save_as_external_data=False,
            onnx_execution_providers=["CPUExecutionProvider"],
            extra_files=[str(p) for p in extra_files],
        )
        return str(info.registered_model_version)

    def _log_files(self, package: ModelPackage, model_dir: Path, extra_dir: Path, run_id: str) -> str:
        """Other formats (OpenVINO IR): a LoggedModel holding the files, with no MLflow flavor."""
        model_dir.mkdir()
        for filename, data in package.model_files.items():
            (model_dir / filename).write_bytes(data)
        extra_dir.rename(model_dir / "extra_files")
        logged = mlflow.initialize_logged_model(
            name="model", source_run_id=run_id, tags={"format": package.format}
        )
        self._client.log_model_artifacts(logged.model_id, str(model_dir))
        mlflow.finalize_logged_model(logged.model_id, "READY")
        try:
            self._client.create_registered_model(package.name)
        except MlflowException as exc:
            if getattr(exc, "error_code", "") != "RESOURCE_ALREADY_EXISTS":
                raise
        created = self._client.create_model_version(
            package.name, source=f"models:/{logged.model_id}", run_id=run_id, model_id=logged.model_id
        )
        return str(created.version)

    # -- runs ----------------------------------------------------------------------------------
    def start_run(
        self, name: str, *, parent_run_id: str | None = None, tags: Mapping[str, str] | None = None
    ) -> str:
        all_tags = dict(tags or {})
        if parent_run_id is not None:
            all_tags["mlflow.parentRunId"] = parent_run_id
        with self._errors():
            run = self._client.create_run(self.experiment_id(), run_name=name, tags=all_tags)
        return str(run.info.run_id)

    def log_params(self, run_id: str, params: Mapping[str, str]) -> None:
        with self._errors():
            self._client.log_batch(run_id, params=[Param(k, str(v)[:6000]) for k, v in params.items()])

    def log_metrics(self, run_id: str, metrics: Mapping[str, float]) -> None:
        now = int(time.time() * 1000)
        with self._errors():
            self._client.log_batch(run_id, metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()])

    def set_tags(self, run_id: str, tags: Mapping[str, str]) -> None:
        with self._errors():
            self._client.log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def log_artifact(self, run_id: str, path: Path, artifact_path: str | None = None) -> None:
        with self._errors():
            self._client.log_artifact(run_id, str(path), artifact_path)

    def end_run(self, run_id: str, status: str = "FINISHED") -> None:
        with self._errors():
            self._client.set_terminated(run_id, status)

    def run_url(self, run_id: str) -> str:
        run = self._client.get_run(run_id)
        return f"{self.tracking_uri}/#/experiments/{run.info.experiment_id}/runs/{run_id}"

    def set_version_tag(self, name: str, version: str, key: str, value: str) -> None:
        with self._errors(name, version):
            self._client.set_model_version_tag(name, check_version(version), key, value)

    def model_tags(self, name: str) -> dict[str, str]:
        with self._errors(name):
            return dict(self._client.get_registered_model(name).tags)

    def set_model_tag(self, name: str, key: str, value: str) -> None:
        with self._errors(name):
            self._client.set_registered_model_tag(name, key, value)

    def _set_alias(self, name: str, alias: str, version: str) -> None:
        with self._errors(name, version):
            self._client.set_registered_model_alias(name, alias, version)

    def _delete_alias(self, name: str, alias: str) -> None:
        with self._errors(name):
            self._client.delete_registered_model_alias(name, alias)

    def _download(self, version: ModelVersion, dest: Path) -> LocalVersion:
        dest.mkdir(parents=True, exist_ok=True)
        # A version's source is a LoggedModel URI (models:/m-...), which MLflow resolves through the
        # process-global tracking URI, not the one passed below: set it, or a fresh process falls
        # back to a local SQLite store and cannot find the model.
        with self._errors(version.name, version.version), _FLUENT_LOCK:
            mlflow.set_tracking_uri(self.tracking_uri)
            mlflow.set_registry_uri(self.tracking_uri)
            root = Path(
                mlflow.artifacts.download_artifacts(
                    artifact_uri=version.uri,
                    dst_path=str(dest),
                    tracking_uri=self.tracking_uri,
                    registry_uri=self.tracking_uri,
                )
            )
        return LocalVersion(version.name, version.version, root, root / "extra_files")

    # -- helpers -------------------------------------------------------------------------------
    def experiment_id(self) -> str:
        existing = self._client.get_experiment_by_name(self.experiment)
        if existing is not None:
            return str(existing.experiment_id)
        return str(self._client.create_experiment(self.experiment))

    def _to_version(self, mv: Any, aliases: dict[str, str]) -> ModelVersion:
        tags = {str(k): str(v) for k, v in (mv.tags or {}).items()}
        run_id = tags.get(TAG_RUN_ID) or mv.run_id or None
        metrics: dict[str, float] = {}
        if run_id:
            try:
                metrics = dict(self._client.get_run(run_id).data.metrics)
            except MlflowException:
                log.warning("run %s of %s v%s is gone; metrics unavailable", run_id, mv.name, mv.version)
        version = str(mv.version)
        return ModelVersion(
            name=mv.name,
            version=version,
            aliases=tuple(sorted(a for a, v in aliases.items() if v == version)),
            tags=tags,
            metrics=metrics,
            run_id=run_id,
            created_at=datetime.fromtimestamp(mv.creation_timestamp / 1000, UTC),
            description=mv.description or "",
        )

    @contextmanager
    def _errors(self, name: str | None = None, version: str | None = None) -> Iterator[None]:
        """Translate MLflow's exceptions into ours, naming what was asked for."""
        try:
            yield
        except LifecycleError:
            raise
        except MlflowException as exc:
            code = getattr(exc, "error_code", "")
            if code == "RESOURCE_DOES_NOT_EXIST" or "not found" in str(exc).lower():
                what = f"model {name!r}" + (f" version {version}" if version else "")
                raise UnknownModelError(
                    f"{what} does not exist in the registry at {self.tracking_uri}"
                ) from exc
            if code == "INVALID_PARAMETER_VALUE" and name is not None and "name" in str(exc).lower():
                # a name MLflow refuses (``/`` or ``:`` in it) is the name of no registered model
                raise UnknownModelError(f"model {name!r} does not exist: {exc.message}") from exc
            if code in ("TEMPORARILY_UNAVAILABLE", "INTERNAL_ERROR") or "Max retries" in str(exc):
                raise RegistryUnavailableError(f"MLflow at {self.tracking_uri} failed: {exc}") from exc
            raise
        except (ConnectionError, OSError) as exc:
            raise RegistryUnavailableError(f"MLflow at {self.tracking_uri} is not reachable: {exc}") from exc


def _signature(contract: ModelContract) -> ModelSignature:
    """The contract as an MLflow signature, one TensorSpec per tensor (dynamic dimensions as -1),
    so that the MLflow UI and ``mlflow models serve`` show and check the same tensors."""

    def spec(tensor: TensorSpec) -> MlflowTensorSpec:
        shape = tuple(d if isinstance(d, int) else -1 for d in tensor.shape)
        return MlflowTensorSpec(tensor.numpy_dtype, shape, tensor.name)

    return ModelSignature(
        inputs=Schema([spec(t) for t in contract.inputs]),
        outputs=Schema([spec(t) for t in contract.outputs]),
    )


def _paged(search: Any, filter_string: str | None = None) -> Iterator[Any]:
    token = None
    while True:
        page = (
            search(filter_string=filter_string, page_token=token)
            if filter_string
            else search(page_token=token)
        )
        yield from page
        token = page.token
        if not token:
            return


def _quote(name: str) -> str:
    return name.replace("'", "\\'")


def _paged_webhooks(client: MlflowClient) -> Iterator[Any]:
    token: str | None = None
    while True:
        page = client.list_webhooks(max_results=100, page_token=token)
        yield from page
        token = page.token
        if not token:
            return
