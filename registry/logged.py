"""A model version that the user's own training code logged to MLflow, read back for conversion.

Takes the ``onnx``, ``pytorch`` and ``sklearn`` flavors; the version's signature says the tensors
(names, dtypes, shapes with -1 for dynamic sizes) or, for a column-based signature, the feature
names. Loading a ``pytorch`` or ``sklearn`` model unpickles it: this happens at registration only,
never in serving, and only for versions of the registry you point at.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import mlflow
import mlflow.onnx
import mlflow.pytorch
import mlflow.sklearn
from mlflow.exceptions import MlflowException

from lifecycle.errors import UnknownModelError
from lifecycle.tensors import ContractViolationError
from registry.uri import parse_model_uri

FLAVORS = ("onnx", "pytorch", "sklearn")


@dataclass(frozen=True)
class SignatureTensor:
    name: str | None
    dtype: str
    shape: tuple[int, ...]
    """MLflow's shape: -1 for a dynamic size."""


@dataclass(frozen=True)
class LoggedModel:
    uri: str
    name: str
    version: str
    flavor: str
    """``onnx``, ``pytorch`` or ``sklearn``."""
    model: Any
    """ONNX bytes, a ``torch.nn.Module`` or a scikit-learn estimator."""
    inputs: tuple[SignatureTensor, ...] = ()
    outputs: tuple[SignatureTensor, ...] = ()
    columns: tuple[str, ...] = ()
    """Feature names of a column-based (DataFrame) input signature."""


def load_logged_model(tracking_uri: str, uri: str) -> LoggedModel:
    """:raises UnknownModelError: the version does not exist.
    :raises ContractViolationError: it has none of the flavors that can be converted."""
    ref = parse_model_uri(uri)
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    client = mlflow.MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    try:
        version = (
            client.get_model_version(ref.name, ref.version)
            if ref.version
            else client.get_model_version_by_alias(ref.name, ref.alias or "")
        )
        info = mlflow.models.get_model_info(uri)
    except MlflowException as exc:
        raise UnknownModelError(f"{uri} is not in the registry at {tracking_uri}: {exc}") from exc
    flavor = next((f for f in FLAVORS if f in info.flavors), None)
    if flavor is None:
        raise ContractViolationError(
            f"{uri} has the flavor(s) {sorted(info.flavors)}; registration converts {', '.join(FLAVORS)}"
        )
    try:
        model = _load(flavor, uri)
    except Exception as exc:  # a flavor's loader fails in its own ways: say which and why
        raise ContractViolationError(
            f"{uri}: its {flavor} model cannot be loaded: {type(exc).__name__}: {exc}"
        ) from exc
    inputs, columns = _schema(info.signature.inputs if info.signature else None)
    outputs, _ = _schema(info.signature.outputs if info.signature else None)
    return LoggedModel(uri, ref.name, str(version.version), flavor, model, inputs, outputs, columns)


def _load(flavor: str, uri: str) -> Any:
    if flavor == "onnx":
        return mlflow.onnx.load_model(uri).SerializeToString()
    if flavor == "sklearn":
        return mlflow.sklearn.load_model(uri)
    loaded = mlflow.pytorch.load_model(uri, map_location="cpu")
    try:
        return loaded.eval()
    except NotImplementedError:  # MLflow's default pt2 format gives an exported program's module,
        return loaded  # which is fixed in inference form and refuses eval()


def _schema(schema: Any) -> tuple[tuple[SignatureTensor, ...], tuple[str, ...]]:
    if schema is None:
        return (), ()
    if schema.is_tensor_spec():
        tensors = tuple(
            SignatureTensor(spec.name, str(spec.type), tuple(int(d) for d in spec.shape))
            for spec in schema.inputs
        )
        return tensors, ()
    return (), tuple(str(name) for name in schema.input_names() if name is not None)
