"""Bring your own model: an ONNX file, a PyTorch module or a scikit-learn estimator, with named
arrays to calibrate and evaluate it, becomes a registered version. The same functions back the
``lifecycle register`` command and notebooks.

Every path checks before it stores: the contract against the graph's own tensors, the arrays
against the contract, the graph's answers against its declared outputs. Anything that does not fit
raises with the tensor named, and nothing is registered.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import onnx

from intake import sklearn as sk
from intake import torch_module
from intake.graph_contract import ContractOptions, contract_for_graph
from intake.npz import NpzContent, read_npz
from lifecycle.graph import graph_tensors, load_onnx
from lifecycle.local_version import ModelPackage
from lifecycle.tensors import ContractViolationError, Dim
from lifecycle.version_builder import package_onnx_model
from registry.abc import ModelRegistry, ModelVersion

if TYPE_CHECKING:
    from registry.logged import LoggedModel

LABELS = frozenset({"y", "labels", "boxes", "box_classes", "box_item"})


class SignatureLike(Protocol):
    """One tensor of an MLflow signature: a name (or none), a dtype, a shape with -1 for dynamic."""

    @property
    def name(self) -> str | None: ...
    @property
    def dtype(self) -> str: ...
    @property
    def shape(self) -> tuple[int, ...]: ...


IMPORT_TAGS = {
    "lifecycle.role": "model",
    "lifecycle.format": "onnx",
    "lifecycle.precision": "fp32",
    "lifecycle.runtime": "onnxruntime",
}


@dataclass(frozen=True)
class Registered:
    version: ModelVersion
    package: ModelPackage

    @property
    def metric(self) -> tuple[str, float]:
        """The task metric on the test split (its name and value)."""
        name = self.package.tags.get("lifecycle.metric", "")
        return name, self.package.metrics.get(f"test_{name}", float("nan"))


def package_onnx_file(
    name: str,
    onnx_path: str | Path,
    data_path: str | Path,
    options: ContractOptions | None = None,
    *,
    seed: int = 0,
) -> ModelPackage:
    """An ONNX file and an NPZ of arrays named after its inputs, as a package ready to register."""
    onnx_bytes = Path(onnx_path).read_bytes()
    proto = load_onnx(onnx_bytes, str(onnx_path))
    content = read_npz(data_path)
    contract = contract_for_graph(proto, (options or ContractOptions()).with_names(**content.names))
    data = content.to_data(name, contract, seed=seed)
    return package_onnx_model(
        name, onnx_bytes, data, contract=contract,
        tags={**IMPORT_TAGS, "lifecycle.recipe": "import", "lifecycle.source_file": Path(onnx_path).name},
        description=f"imported from {Path(onnx_path).name}",
    )  # fmt: skip


def package_sklearn(
    name: str,
    estimator_path: str | Path,
    data_path: str | Path,
    options: ContractOptions | None = None,
    *,
    seed: int = 0,
) -> ModelPackage:
    """A joblib-saved scikit-learn estimator or pipeline and an NPZ with ``X`` (or ``x``) and
    optionally ``y``: converted by skl2onnx, the difference from scikit-learn recorded."""
    return _package_estimator(
        name, sk.load_estimator(estimator_path), read_npz(data_path), options or ContractOptions(),
        tags={**IMPORT_TAGS, "lifecycle.recipe": "sklearn", "lifecycle.source_file": Path(estimator_path).name},
        description=f"scikit-learn {Path(estimator_path).name} converted by skl2onnx", seed=seed,
    )  # fmt: skip


def _package_estimator(
    name: str,
    estimator: Any,
    content: NpzContent,
    user: ContractOptions,
    *,
    tags: dict[str, str],
    description: str,
    seed: int,
) -> ModelPackage:
    x = content.arrays.get(sk.INPUT, content.arrays.get("x"))
    if x is None:
        raise ContractViolationError(
            f"{content.path} needs the feature rows as X (or x); it holds {sorted(content.arrays)}"
        )
    converted = sk.convert(estimator, x)
    arrays = {sk.INPUT: x.astype("float32")}
    y = content.arrays.get("y", content.arrays.get("labels"))
    if y is not None:
        arrays["y"] = sk.class_index(y, converted.classes) if converted.classes else y.astype("float32")
    content = NpzContent(content.path, arrays, content.names)
    if user.class_names and len(user.class_names) != len(converted.classes):
        raise ContractViolationError(
            f"--classes names {len(user.class_names)} classes; the estimator has {len(converted.classes)}: "
            f"{', '.join(str(c) for c in converted.classes)}"
        )
    merged = replace(
        converted.options,
        class_names=user.class_names or converted.options.class_names,
        feature_names=user.feature_names or content.names.get("feature_names", ()),
        target_names=user.target_names or content.names.get("target_names", ()),
    )
    proto = load_onnx(converted.onnx_model, f"{name} (skl2onnx)")
    contract = contract_for_graph(proto, merged)
    data = content.to_data(name, contract, seed=seed)
    return package_onnx_model(
        name, converted.onnx_model, data, contract=contract,
        metrics={"export_max_abs_diff": converted.max_abs_diff}, tags=tags, description=description,
    )  # fmt: skip


def package_torch(
    name: str,
    factory: str,
    data_path: str | Path,
    options: ContractOptions | None = None,
    *,
    weights: str | Path | None = None,
    output_names: tuple[str, ...] = (),
    seed: int = 0,
) -> ModelPackage:
    """A PyTorch module from ``package.module:factory`` (and a weights file), exported by torch's
    exporter on two example items of the NPZ, the difference from torch recorded."""
    module = torch_module.load_factory(factory)
    if weights is not None:
        torch_module.load_weights(module, weights)
    return _package_module(
        name, module, read_npz(data_path), options or ContractOptions(), output_names=output_names,
        tags={**IMPORT_TAGS, "lifecycle.recipe": "torch-export", "lifecycle.source": factory},
        description=f"exported from {factory}", seed=seed,
    )  # fmt: skip


def _package_module(
    name: str,
    module: Any,
    content: NpzContent,
    options: ContractOptions,
    *,
    output_names: tuple[str, ...],
    tags: dict[str, str],
    description: str,
    seed: int,
    signature: Sequence[SignatureLike] = (),
) -> ModelPackage:
    example = {k: v[:2] for k, v in content.arrays.items() if k not in LABELS}
    exported = torch_module.export(module, example, output_names=output_names, dynamic=options.shapes)
    proto = load_onnx(exported.onnx_model, f"{name} (torch export)")
    if signature:
        options = replace(options, shapes={**signature_shapes(proto, signature), **options.shapes})
    contract = contract_for_graph(proto, options.with_names(**content.names))
    data = content.to_data(name, contract, seed=seed)
    return package_onnx_model(
        name, exported.onnx_model, data, contract=contract,
        metrics={"export_max_abs_diff": exported.max_abs_diff}, tags=tags, description=description,
    )  # fmt: skip


def package_logged(
    name: str,
    logged: LoggedModel,
    data_path: str | Path,
    options: ContractOptions | None = None,
    *,
    output_names: tuple[str, ...] = (),
    seed: int = 0,
) -> ModelPackage:
    """A version that the user's own code logged to MLflow (onnx, pytorch or sklearn flavor),
    converted to ONNX; its signature's shapes and column names become the contract's, and the new
    version records its source (``lifecycle.source_model_uri``, parent model and version)."""
    options = options or ContractOptions()
    content = read_npz(data_path)
    tags = {
        **IMPORT_TAGS, "lifecycle.recipe": f"mlflow-{logged.flavor}", "lifecycle.source_model_uri": logged.uri,
        "lifecycle.parent_model": logged.name, "lifecycle.parent_version": logged.version,
    }  # fmt: skip
    description = f"{logged.flavor} model {logged.uri} converted to ONNX"
    if logged.flavor == "sklearn":
        options = options.with_names(feature_names=logged.columns)
        return _package_estimator(
            name, logged.model, content, options, tags=tags, description=description, seed=seed
        )
    if logged.flavor == "pytorch":
        return _package_module(
            name, logged.model, content, options, output_names=output_names, tags=tags,
            description=description, seed=seed, signature=logged.inputs,
        )  # fmt: skip
    proto = load_onnx(logged.model, logged.uri)
    shapes = signature_shapes(proto, (*logged.inputs, *logged.outputs))
    contract = contract_for_graph(
        proto, replace(options, shapes={**shapes, **options.shapes}).with_names(**content.names)
    )
    data = content.to_data(name, contract, seed=seed)
    return package_onnx_model(name, logged.model, data, contract=contract, tags=tags, description=description)


def signature_shapes(
    proto: onnx.ModelProto, signature: Sequence[SignatureLike]
) -> dict[str, tuple[Dim, ...]]:
    """The sizes an MLflow signature fixes, laid over the graph's tensors (by name, or by position
    for unnamed inputs); -1 keeps the graph's dimension.

    :raises ContractViolationError: naming a tensor whose dtype or rank differs from the graph's."""
    inputs, outputs = graph_tensors(proto)
    graph = {t.name: t for t in (*inputs, *outputs)}
    shapes: dict[str, tuple[Dim, ...]] = {}
    for i, tensor in enumerate(signature):
        spec = graph.get(tensor.name or "") or (inputs[i] if i < len(inputs) and not tensor.name else None)
        if spec is None:
            raise ContractViolationError(
                f"signature tensor {tensor.name!r} is not a tensor of the graph: {sorted(graph)}"
            )
        if tensor.dtype != spec.dtype or len(tensor.shape) != spec.rank:
            raise ContractViolationError(
                f"signature tensor {spec.name!r} is {tensor.dtype} {tensor.shape}; the graph says {spec.describe()}"
            )
        shapes[spec.name] = tuple(
            graph_dim if size == -1 or j == 0 else size
            for j, (size, graph_dim) in enumerate(zip(tensor.shape, spec.shape, strict=True))
        )
    return shapes


def register(
    registry: ModelRegistry, package: ModelPackage, *, alias: str | None = None, actor: str = "cli"
) -> Registered:
    version = registry.register(package)
    if alias is not None:
        version = registry.set_alias(version.name, alias, version.version, actor=actor)
    return Registered(version, package)


def register_onnx_file(
    registry: ModelRegistry,
    name: str,
    onnx_path: str | Path,
    data_path: str | Path,
    options: ContractOptions | None = None,
    *,
    alias: str | None = None,
    actor: str = "cli",
) -> Registered:
    return register(
        registry, package_onnx_file(name, onnx_path, data_path, options), alias=alias, actor=actor
    )


__all__ = [
    "ContractOptions",
    "Registered",
    "package_logged",
    "package_onnx_file",
    "package_sklearn",
    "package_torch",
    "register",
    "register_onnx_file",
]
