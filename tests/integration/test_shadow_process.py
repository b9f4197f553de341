"""Shadow mirroring in a child process, on SQLite and PostgreSQL: every mirrored request sent is run
and logged by the child, with the challenger's own answers; what cannot be queued is dropped and
counted, never waited for; a dead child is visible and restarted by the router."""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

import joblib
import numpy as np
import pytest
from sklearn.datasets import load_wine
from sklearn.linear_model import LogisticRegression
from sqlalchemy import Engine, select

from intake import pretrained
from intake.register import package_sklearn
from intake.zoo import ppocr_cls_path, word_crops
from lifecycle.data import DataSplits
from lifecycle.db import session_factory
from lifecycle.db.schema import PredictionRow
from lifecycle.db.traffic import TrafficPlan
from lifecycle.local_version import ModelPackage
from lifecycle.runtimes.onnxruntime import OrtRunner
from serving.routing import Router
from serving.shadow_process import ProcessMirror, ShadowProcessError
from serving.slot import Served


def _mirror(tmp_path: Path, package: ModelPackage, engine: Engine) -> ProcessMirror:
    model = tmp_path / "model.onnx"
    model.write_bytes(package.model_files["model.onnx"])
    return ProcessMirror(
        model="m", version="7", files={"model.onnx": model}, runtime="onnxruntime",
        inference_precision=None, database_url=engine.url.render_as_string(hide_password=False),
        contract=package.contract,
    )  # fmt: skip


def _shadow_rows(engine: Engine) -> list[PredictionRow]:
    with session_factory(engine)() as session:
        return list(session.scalars(select(PredictionRow).where(PredictionRow.role == "shadow")))


def test_mirrored_requests_are_run_and_logged_by_the_child(
    tmp_path: Path, tabular_package: ModelPackage, tabular_data: DataSplits, migrated_engine: Engine
) -> None:
    mirror = _mirror(tmp_path, tabular_package, migrated_engine)
    try:
        x = tabular_data.x_test[:30].astype(np.float32)
        for i in range(0, 30, 3):  # ten requests of three rows
            assert mirror.offer({"x": x[i : i + 3]}, [f"r{i}:{k}" for k in range(3)])
        assert mirror.wait_idle(30), mirror.stats()
        assert mirror.stats() == {"mirrored": 10, "failed": 0, "dropped": 0, "pending": 0}
        assert mirror.precision == "fp32"
    finally:
        mirror.close()
    assert not mirror.alive  # the child exits when its socket closes, after flushing its log
    rows = {r.request_id: r for r in _shadow_rows(migrated_engine)}
    assert len(rows) == 30
    expected = OrtRunner(tmp_path / "model.onnx").run(x).argmax(axis=1)
    for i in range(0, 30, 3):
        for k in range(3):
            row = rows[f"r{i}:{k}"]
            assert (row.model_name, row.version, row.error, row.features) == ("m", "7", None, [])
            assert row.predicted_class == int(expected[i + k]) and 0.5 <= (row.confidence or 0) <= 1


def test_a_scikit_learn_challenger_is_judged_on_its_class_scores(
    tmp_path: Path, migrated_engine: Engine
) -> None:
    x, y = load_wine(return_X_y=True)
    estimator = LogisticRegression(max_iter=5000).fit(x, y)
    joblib.dump(estimator, tmp_path / "wine.joblib")
    np.savez(tmp_path / "wine.npz", X=x.astype(np.float32), y=y)
    package = package_sklearn("wine", tmp_path / "wine.joblib", tmp_path / "wine.npz")
    model = tmp_path / "model.onnx"
    model.write_bytes(package.model_files["model.onnx"])
    mirror = ProcessMirror(
        model="wine", version="2", files={"model.onnx": model}, runtime="onnxruntime", inference_precision=None,
        database_url=migrated_engine.url.render_as_string(hide_password=False), contract=package.contract,
    )  # fmt: skip
    try:  # its graph answers label first, probabilities second: the child reads the probabilities
        assert mirror.offer(
            {package.contract.inputs[0].name: x[:20].astype(np.float32)}, [f"w{i}" for i in range(20)]
        )
        assert mirror.wait_idle(30) and mirror.stats()["failed"] == 0, mirror.stats()
    finally:
        mirror.close()
    rows = {r.request_id: r for r in _shadow_rows(migrated_engine)}
    expected = estimator.predict_proba(x[:20])
    for i in range(20):
        assert rows[f"w{i}"].error is None and rows[f"w{i}"].predicted_class == int(expected[i].argmax())
        assert abs((rows[f"w{i}"].confidence or 0) - float(expected[i].max())) < 1e-4


def test_what_cannot_be_queued_is_dropped_and_counted_and_a_dead_child_shows(
    tmp_path: Path, tabular_package: ModelPackage, tabular_data: DataSplits, migrated_engine: Engine
) -> None:
    mirror = _mirror(tmp_path, tabular_package, migrated_engine)
    try:
        huge = np.zeros((200_000, 30), dtype=np.float32)  # 24 MB: larger than any socket buffer
        assert not mirror.offer({"x": huge}, ["big"])
        assert mirror.offer({"x": tabular_data.x_test[:1].astype(np.float32)}, ["small"])
        assert mirror.wait_idle(30)
        assert mirror.stats()["dropped"] == 1 and mirror.stats()["mirrored"] == 1
        deadline = time.monotonic() + 10  # written within the log's flush interval
        while not _shadow_rows(migrated_engine) and time.monotonic() < deadline:
            time.sleep(0.1)
        os.kill(mirror._process.pid, signal.SIGKILL)
        mirror._process.wait(10)
        assert not mirror.alive
        assert not mirror.offer({"x": tabular_data.x_test[:1].astype(np.float32)}, ["after"])  # never raises
        assert mirror.stats()["dropped"] == 2
    finally:
        mirror.close()
    assert [r.request_id for r in _shadow_rows(migrated_engine)] == ["small"]


def test_a_model_the_child_cannot_load_is_a_clear_error(
    tmp_path: Path, tabular_package: ModelPackage, migrated_engine: Engine
) -> None:
    broken = tmp_path / "model.onnx"
    broken.write_bytes(b"not an onnx graph")
    with pytest.raises(ShadowProcessError, match=r"shadow process for v3: \w+"):
        ProcessMirror(
            model="m", version="3", files={"model.onnx": broken}, runtime="onnxruntime",
            inference_precision=None, database_url=migrated_engine.url.render_as_string(hide_password=False),
            contract=tabular_package.contract,
        )  # fmt: skip


def test_the_router_restarts_a_dead_shadow_process_and_stops_it_when_the_rollout_ends(
    tmp_path: Path, tabular_package: ModelPackage, migrated_engine: Engine
) -> None:
    plan: dict[str, TrafficPlan | None] = {"now": TrafficPlan(1, "7", 0.0, 1.0)}
    started: list[ProcessMirror] = []

    def mirror_loader(version: str) -> ProcessMirror:
        started.append(_mirror(tmp_path, tabular_package, migrated_engine))
        return started[-1]

    def loader(version: str, role: str) -> Served:
        return Served("m", version, role, runner=None, contract=None, loaded_at="")  # type: ignore[arg-type]

    router = Router("m", lambda _: plan["now"], loader, mirror_loader=mirror_loader, rng=random.Random(0))
    router.refresh()
    first = started[0]
    assert router.mirror() is not None and router.mirror().mirror is first  # type: ignore[union-attr]
    os.kill(first._process.pid, signal.SIGKILL)
    first._process.wait(10)
    router.refresh()
    assert len(started) == 2 and started[1].alive and router.challenger.mirror is started[1]  # type: ignore[union-attr]
    plan["now"] = None
    router.refresh()
    deadline = time.monotonic() + 10
    while started[1].alive and time.monotonic() < deadline:
        time.sleep(0.05)
    assert router.challenger is None and not started[1].alive


def test_an_image_classifier_is_mirrored_through_files_when_a_request_exceeds_a_datagram(
    tmp_path: Path, migrated_engine: Engine
) -> None:
    """PP-OCR's classifier: a request of 8 crops (884 KB) is more than one datagram carries, so it
    travels as a file; a single crop as a datagram. Both answered and logged as the model would."""
    package = pretrained.ppocr_cls(tmp_path, n=16)
    mirror = ProcessMirror(
        model="ppocr", version="2", files={"model.onnx": ppocr_cls_path()}, runtime="onnxruntime",
        inference_precision=None, database_url=migrated_engine.url.render_as_string(hide_password=False),
        contract=package.contract,
    )  # fmt: skip
    crops = word_crops(9, seed=3)[0]
    try:
        assert mirror.offer({"x": crops[:8]}, [f"big:{i}" for i in range(8)])
        assert mirror.offer({"x": crops[8:]}, ["one"])
        assert mirror.wait_idle(30) and mirror.stats()["mirrored"] == 2, mirror.stats()
        assert not any(mirror._spill_dir.iterdir())  # the child removed what it read
    finally:
        mirror.close()
    assert not mirror._spill_dir.exists()
    rows = {r.request_id: r for r in _shadow_rows(migrated_engine)}
    probabilities = OrtRunner(ppocr_cls_path()).run_named({"x": crops})
    scores = next(iter(probabilities.values()))
    for i, request_id in enumerate([*(f"big:{i}" for i in range(8)), "one"]):
        assert rows[request_id].predicted_class == int(scores[i].argmax()), request_id
        assert rows[request_id].confidence == pytest.approx(float(scores[i].max()), abs=1e-5)
