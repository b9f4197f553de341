"""One behaviour suite for every registry backend: the in-memory fake and a real MLflow server."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from lifecycle.contract import ModelContract
from lifecycle.data import DataSplits
from lifecycle.db import create_db_engine, session_factory, upgrade_to_head
from lifecycle.db.alias_history import AliasHistory
from lifecycle.errors import ArtifactIntegrityError, UnknownModelError
from lifecycle.local_version import CONTRACT_FILE, ModelPackage
from lifecycle.runtimes.onnxruntime import OrtRunner
from lifecycle.training import accuracy, predict_logits
from lifecycle.version_builder import load_torch_model
from registry.abc import ModelRegistry
from registry.memory import InMemoryModelRegistry
from registry.mlflow import MlflowModelRegistry
from registry.server import MlflowServerProcess
from registry.uri import InvalidReferenceError


@pytest.fixture
def history(tmp_path: Path) -> Iterator[AliasHistory]:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'lifecycle.db'}")
    upgrade_to_head(engine)
    yield AliasHistory(session_factory(engine))
    engine.dispose()


@pytest.fixture(params=["memory", "mlflow"])
def registry(request: pytest.FixtureRequest, history: AliasHistory) -> ModelRegistry:
    if request.param == "memory":
        return InMemoryModelRegistry(history)
    server: MlflowServerProcess = request.getfixturevalue("mlflow_server")
    return MlflowModelRegistry(server.url, experiment="contract-tests", history=history)


@pytest.fixture
def package(tabular_package: ModelPackage) -> ModelPackage:
    """A unique model name per test: the MLflow server is shared by the session."""
    return replace(tabular_package, name=f"m-{uuid.uuid4().hex[:8]}", tags=dict(tabular_package.tags))


def test_register_creates_numbered_versions_with_tags_and_metrics(
    registry: ModelRegistry, package: ModelPackage
) -> None:
    v1 = registry.register(package)
    v2 = registry.register(replace(package, tags={**package.tags, "lifecycle.parent_version": "1"}))
    assert (v1.version, v2.version) == ("1", "2")
    assert package.name in registry.list_models()
    assert [v.version for v in registry.list_versions(package.name)] == ["1", "2"]
    assert v1.artifact_sha256 == package.artifact_sha256
    assert v2.tags["lifecycle.parent_version"] == "1"
    assert v1.tags["lifecycle.role"] == "model"
    assert v1.metrics["test_accuracy"] == pytest.approx(package.metrics["test_accuracy"])


def test_aliases_set_move_delete_and_history(
    registry: ModelRegistry, package: ModelPackage, history: AliasHistory
) -> None:
    registry.register(package)
    registry.register(package)
    registry.set_alias(package.name, "champion", "1", actor="test")
    assert registry.get_by_alias(package.name, "champion").version == "1"
    moved = registry.set_alias(package.name, "champion", 2, actor="rollout")
    assert moved.aliases == ("champion",)
    assert registry.resolve(f"models:/{package.name}@champion").version == "2"
    assert registry.get_version(package.name, "1").aliases == ()
    registry.set_alias(package.name, "challenger", "1", actor="test")
    assert registry.aliases(package.name) == {"champion": "2", "challenger": "1"}
    registry.delete_alias(package.name, "challenger", actor="abort")
    assert registry.aliases(package.name) == {"champion": "2"}
    assert [(i.alias, i.version, i.set_by, i.cleared_by) for i in history.history(package.name)] == [
        ("champion", "1", "test", "rollout"),
        ("champion", "2", "rollout", None),
        ("challenger", "1", "test", "abort"),
    ]


def test_unknown_and_malformed_references_raise_clear_errors(
    registry: ModelRegistry, package: ModelPackage
) -> None:
    with pytest.raises(UnknownModelError, match="nope"):
        registry.list_versions(f"nope-{uuid.uuid4().hex[:6]}")
    for refused in (":", "a/b"):  # names MLflow refuses are the names of no model (not its error)
        with pytest.raises(UnknownModelError, match=re.escape(repr(refused))):
            registry.aliases(refused)
    registry.register(package)
    with pytest.raises(UnknownModelError, match="version 7"):
        registry.get_version(package.name, 7)
    with pytest.raises(UnknownModelError, match="no alias 'champion'"):
        registry.get_by_alias(package.name, "champion")
    with pytest.raises(UnknownModelError, match="version 5"):
        registry.set_alias(package.name, "champion", 5, actor="t")
    with pytest.raises(UnknownModelError, match="no alias"):
        registry.delete_alias(package.name, "challenger", actor="t")
    with pytest.raises(InvalidReferenceError):
        registry.set_alias(package.name, "latest", 1, actor="t")
    with pytest.raises(InvalidReferenceError):
        registry.resolve("runs:/x/model")


def test_download_verifies_and_reproduces_the_logged_accuracy(
    registry: ModelRegistry, package: ModelPackage, tabular_data: DataSplits, tmp_path: Path
) -> None:
    version = registry.register(package)
    local = registry.download(package.name, version.version, tmp_path / "dl")
    assert local.contract == package.contract
    runner = OrtRunner(local.onnx_path)
    served = accuracy(runner.run(tabular_data.x_test), tabular_data.y_test)
    assert served == pytest.approx(version.metrics["test_accuracy"])
    reference = local.reference()
    np.testing.assert_allclose(reference.logits, runner.run(reference.x), atol=1e-5)
    splits = local.splits()
    assert splits.fingerprint() == tabular_data.fingerprint()
    module = load_torch_model(local)
    assert accuracy(predict_logits(module, tabular_data.x_test), tabular_data.y_test) == pytest.approx(served)


def test_tampered_artifact_is_refused(registry: ModelRegistry, package: ModelPackage, tmp_path: Path) -> None:
    version = registry.register(package)
    registry.set_version_tag(package.name, version.version, "lifecycle.artifact_sha256", "0" * 64)
    with pytest.raises(ArtifactIntegrityError, match="sha256"):
        registry.download(package.name, version.version, tmp_path / "dl")


def test_openvino_ir_versions_round_trip(
    registry: ModelRegistry, package: ModelPackage, tabular_data: DataSplits, tmp_path: Path
) -> None:
    """A non-ONNX format: model.xml + model.bin, registered without an MLflow flavor."""
    import openvino as ov

    from lifecycle.local_version import MANIFEST_FILE
    from lifecycle.names import TAG_ARTIFACT_SHA256
    from lifecycle.runtimes.load import load_version

    (tmp_path / "m.onnx").write_bytes(package.onnx_model)
    ov.save_model(
        ov.convert_model(str(tmp_path / "m.onnx")), str(tmp_path / "model.xml"), compress_to_fp16=False
    )
    ir = replace(
        package,
        format="openvino",
        model_files={n: (tmp_path / n).read_bytes() for n in ("model.xml", "model.bin")},
        tags={**package.tags, "lifecycle.runtime": "openvino", "lifecycle.inference_precision_hint": "f32"},
    )
    assert ir.tags[TAG_ARTIFACT_SHA256] == ir.artifact_sha256 != package.artifact_sha256
    assert b'"openvino"' in ir.files[MANIFEST_FILE] and b'"onnx"' in package.files[MANIFEST_FILE]
    version = registry.register(ir)
    local = registry.download(ir.name, version.version, tmp_path / "dl")
    assert local.format == "openvino"
    runner = load_version(local, dict(version.tags))
    assert runner.runtime == "openvino" and runner.precision == "fp32"
    assert accuracy(runner.run(tabular_data.x_test), tabular_data.y_test) == pytest.approx(
        package.metrics["test_accuracy"], abs=0.01
    )


def test_registered_model_tags(registry: ModelRegistry, package: ModelPackage) -> None:
    registry.register(package)
    registry.set_model_tag(package.name, "lifecycle.rollout.interval_s", "5")
    assert registry.model_tags(package.name)["lifecycle.rollout.interval_s"] == "5"
    with pytest.raises(UnknownModelError):
        registry.model_tags("no-such-model")


def test_concurrent_downloads_into_one_folder_each_get_complete_verified_files(
    registry: ModelRegistry, package: ModelPackage, tmp_path: Path
) -> None:
    """Two serving replicas on one host share a cache folder: none may read the other's half-written files."""
    version = registry.register(package).version
    dest = tmp_path / "cache" / package.name / version
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: registry.download(package.name, version, dest), range(4)))
    for local in results:
        local.verify(package.artifact_sha256)
        assert ModelContract.from_json((local.files_dir / CONTRACT_FILE).read_text()) == package.contract
    again = registry.download(package.name, version, dest)  # the folder exists: it is reused
    assert again.model_dir.is_relative_to(dest) and again.files_dir.is_relative_to(dest)
    leftovers = [p.name for p in dest.parent.iterdir() if p != dest]
    assert len(leftovers) <= 3, leftovers  # at most the copies of the downloads that lost the race
