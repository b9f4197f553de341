"""The retrain pipeline: trigger → lock → data → distill a new student from the teacher → INT8 →
gates → register with lineage → alias ``challenger`` (the rollout takes over from there).

A failure anywhere leaves the champion untouched, is recorded on the job and its MLflow run, and
raises an alert. With enough labeled feedback the teacher is first fine-tuned on it and registered
as a new teacher version.
"""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import numpy as np
import torch
from sqlalchemy.orm import Session, sessionmaker

from lifecycle.alerts import Alert, Alerter
from lifecycle.contract import ModelContract
from lifecycle.data import DataSplits
from lifecycle.db.locks import Locks
from lifecycle.db.types import utcnow
from lifecycle.distillation import DistillConfig, distill
from lifecycle.errors import LifecycleError
from lifecycle.local_version import ARCHITECTURE_FILE, LocalVersion
from lifecycle.names import CHALLENGER, CHAMPION, ROLLOUT_TAG_PREFIX, Severity
from lifecycle.nets import Architecture, TabularMLP
from lifecycle.runtimes.base import run_batched
from lifecycle.runtimes.load import load_version
from lifecycle.runtimes.onnxruntime import OrtRunner
from lifecycle.training import TrainConfig, accuracy, augmentation_for, predict_logits, train_classifier
from lifecycle.version_builder import load_torch_model, package_onnx_model, package_torch_model
from optimize.recipes.distill import student_architecture
from optimize.recipes.ort_quant import int8_static
from optimize.variant import Parent, RecipeOptions
from registry.abc import ModelRegistry, RunTracker
from retrain.data import RetrainData, assemble, pseudo_labels, with_augmented_production
from retrain.jobs import RetrainJob, RetrainJobs
from retrain.settings import RetrainSettings

log = logging.getLogger(__name__)


class RetrainBusyError(LifecycleError):
    """Another retrain of the same model is running."""


class RetrainGateError(LifecycleError):
    """The retrained student did not pass its gates."""


class Retrainer:
    def __init__(
        self,
        jobs: RetrainJobs,
        locks: Locks,
        registry: ModelRegistry,
        tracker: RunTracker | None,
        alerter: Alerter,
        settings: RetrainSettings,
        sessions: sessionmaker[Session],
        *,
        owner: str = "cli",
    ) -> None:
        self.jobs = jobs
        self._locks = locks
        self._registry = registry
        self._tracker = tracker
        self._alerter = alerter
        self.settings = settings
        self._sessions = sessions
        self.owner = owner

    def cooling_down(self, model: str) -> bool:
        last = self.jobs.last_success(model)
        return last is not None and (utcnow() - last.started_at).total_seconds() < self.settings.cooldown_s

    def run(self, model: str, trigger: str, trigger_ref: str = "") -> RetrainJob:
        """Retrain ``model`` now. :raises RetrainBusyError: another retrain of it holds the lock."""
        lock = f"retrain:{model}"
        if not self._locks.acquire(lock, self.owner, self.settings.lock_ttl_s):
            raise RetrainBusyError(f"a retrain of {model} is already running ({self._locks.holder(lock)})")
        job_id = self.jobs.create(model, trigger, trigger_ref)
        run_id = self._start_run(model, trigger, trigger_ref)
        try:
            return self._run(job_id, run_id, model)
        except Exception as exc:
            log.exception("retrain %d of %s failed", job_id, model)
            job = self.jobs.update(
                job_id,
                status="failed",
                finished_at=utcnow(),
                error=f"{type(exc).__name__}: {exc}",
                mlflow_run_id=run_id,
            )
            self._end_run(run_id, "FAILED")
            self._alerter.raise_alert(
                Alert(
                    "retrain",
                    Severity.CRITICAL,
                    f"retrain:{model}:failed",
                    f"retrain of {model} failed",
                    job.error or "",
                    {"job_id": job_id, "trigger": trigger},
                )
            )
            return job
        finally:
            self._locks.release(lock, self.owner)

    def _run(self, job_id: int, run_id: str | None, model: str) -> RetrainJob:
        s = self.settings
        started = time.perf_counter()
        champion = self._registry.get_by_alias(model, CHAMPION)
        teacher_version = champion.tags.get("lifecycle.teacher_version", champion.version)
        with tempfile.TemporaryDirectory(prefix="retrain-") as tmp:
            work = Path(tmp)
            local = self._registry.download(model, champion.version, work / "champion")
            teacher_local = self._registry.download(model, teacher_version, work / "teacher")
            teacher = load_version(
                teacher_local, dict(self._registry.get_version(model, teacher_version).tags)
            )
            champion_runner = load_version(local, dict(champion.tags))
            splits = local.splits()
            data = assemble(
                self._sessions,
                model, splits, window=timedelta(hours=s.window_hours), max_production=s.max_production, seed=s.seed,
            )  # fmt: skip
            metrics: dict[str, float] = {}
            refreshed = self._refresh_teacher(
                job_id, run_id, model, teacher_version, teacher_local, splits, data, metrics
            )
            if refreshed is not None:
                teacher_version, teacher = refreshed
            self.jobs.update(
                job_id, champion_version=champion.version, teacher_version=teacher_version, counts=data.counts
            )
            student, architecture = self._student(local, teacher_local, splits)
            x, y = with_augmented_production(data, augmentation_for(architecture), s.augment_copies, s.seed)
            metrics["augmented_rows"] = float(len(x) - len(data.x))
            config = DistillConfig(temperature=s.temperature, alpha=s.alpha, epochs=s.epochs, seed=s.seed)
            # a step budget: with much production data, fewer passes over more rows
            steps_per_epoch = -(-len(x) // config.batch_size)
            config = replace(config, epochs=max(5, min(s.epochs, s.max_steps // steps_per_epoch)))
            metrics["distill_epochs"] = float(config.epochs)
            result = distill(student, run_batched(teacher, x), x, y, data.x_val, data.y_val, config)
            with torch.no_grad():
                student_clean = accuracy(student(torch.from_numpy(splits.x_val)).numpy(), splits.y_val)
            champion_clean = accuracy(run_batched(champion_runner, splits.x_val), splits.y_val)
            metrics |= {
                "student_val_accuracy": result.best_val_accuracy,
                "student_clean_val_accuracy": student_clean,
                "champion_clean_val_accuracy": champion_clean,
                "distill_seconds": result.seconds,
                "epochs_run": float(result.epochs_run),
            }
            fb_x, fb_y = data.x_val[len(splits.x_val) :], data.y_val[len(splits.y_val) :]
            if len(fb_x):
                with torch.no_grad():
                    student_fb = accuracy(student(torch.from_numpy(fb_x)).numpy(), fb_y)
                champion_fb = accuracy(run_batched(champion_runner, fb_x), fb_y)
                metrics |= {
                    "student_feedback_val_accuracy": student_fb,
                    "champion_feedback_val_accuracy": champion_fb,
                }
                if student_fb < champion_fb:
                    raise RetrainGateError(
                        f"retrained student's accuracy on {len(fb_y)} held-out labeled production rows "
                        f"{student_fb:.4f} is below the champion's {champion_fb:.4f}"
                    )
            if student_clean < champion_clean - s.max_accuracy_drop:
                raise RetrainGateError(
                    f"retrained student's clean validation accuracy {student_clean:.4f} is more than "
                    f"{s.max_accuracy_drop:.3f} below the champion's {champion_clean:.4f}"
                )
            lineage = {
                "lifecycle.role": "student",
                "lifecycle.recipe": "retrain-distill",
                "lifecycle.teacher_version": teacher_version,
                "lifecycle.parent_version": champion.version,
                "lifecycle.retrain_job": str(job_id),
                "lifecycle.retrain_run_id": run_id or "",
                "lifecycle.data_window": f"{data.window_start} .. {data.window_end}",
                "lifecycle.sample_counts": str(data.counts),
            }
            if s.relax_agreement:
                # meant to answer differently where the champion is wrong: agreement with it is no gate
                lineage |= {
                    f"{ROLLOUT_TAG_PREFIX}min_agreement": "0",
                    f"{ROLLOUT_TAG_PREFIX}max_confidence_divergence": "1",
                }
            package = package_torch_model(model, student, splits, architecture=architecture, tags=lineage)
            student_version = self._registry.register(package).version
            challenger = student_version
            if s.quantize:
                challenger = (
                    self._quantize(
                        model,
                        student_version,
                        package.onnx_model,
                        package.contract,
                        splits,
                        lineage,
                        work,
                        metrics,
                    )
                    or challenger
                )
            metrics["retrain_seconds"] = time.perf_counter() - started
        self._registry.set_alias(model, CHALLENGER, challenger, actor=f"retrain job {job_id}")
        if run_id is not None and self._tracker is not None:
            self._tracker.log_metrics(run_id, metrics)
            self._tracker.set_tags(run_id, {"lifecycle.challenger_version": challenger})
        self._end_run(run_id, "FINISHED")
        log.info(
            "retrain %d of %s: v%s set as challenger (%.0f s)",
            job_id,
            model,
            challenger,
            metrics["retrain_seconds"],
        )
        return self.jobs.update(
            job_id,
            status="succeeded",
            finished_at=utcnow(),
            challenger_version=challenger,
            metrics=metrics,
            mlflow_run_id=run_id,
        )

    def _refresh_teacher(
        self,
        job_id: int,
        run_id: str | None,
        model: str,
        teacher_version: str,
        teacher_local: LocalVersion,
        splits: DataSplits,
        data: RetrainData,
        metrics: dict[str, float],
    ) -> tuple[str, OrtRunner] | None:
        """Fine-tune the teacher on the labeled feedback, its own training rows and the production rows it
        is confident about (pseudo-labels), with its training augmentation, and register it
        as a new teacher version, so that the student learns from a teacher that has seen the new data.
        None when there is too little feedback, no torch weights, or the refresh would cost clean accuracy."""
        s = self.settings
        n_ref = data.counts["reference_train"]
        labeled = data.y[n_ref:] >= 0
        x_fb, y_fb = data.x[n_ref:][labeled], data.y[n_ref:][labeled]
        metrics["feedback_rows"] = float(len(x_fb))
        if len(x_fb) < s.refresh_teacher_min_feedback or not teacher_local.has_weights:
            return None
        teacher = load_torch_model(teacher_local)
        architecture = Architecture.from_json((teacher_local.files_dir / ARCHITECTURE_FILE).read_text())
        before = accuracy(predict_logits(teacher, splits.x_val), splits.y_val)
        fb_x, fb_y = data.x_val[len(splits.x_val) :], data.y_val[len(splits.y_val) :]
        # unlabeled production rows the teacher is sure of teach it too (pseudo-labels, self-training)
        x_unlabeled = data.x[n_ref:][~labeled]
        x_pseudo, y_pseudo = pseudo_labels(predict_logits(teacher, x_unlabeled), x_unlabeled,
                                           s.pseudo_label_confidence)  # fmt: skip
        if len(x_pseudo) > len(splits.x_train):  # new data at most half of what the teacher sees
            keep = np.random.default_rng(s.seed).choice(len(x_pseudo), len(splits.x_train), replace=False)
            x_pseudo, y_pseudo = x_pseudo[keep], y_pseudo[keep]
        metrics["pseudo_label_rows"] = float(len(x_pseudo))
        # feedback is scarce: repeat it so it is about a quarter of what the teacher sees
        repeat = max(1, round(len(splits.x_train) / (3 * len(x_fb))))
        tuning = replace(
            splits,
            x_train=np.concatenate([splits.x_train, np.repeat(x_fb, repeat, axis=0), x_pseudo]),
            y_train=np.concatenate([splits.y_train, np.repeat(y_fb, repeat), y_pseudo]),
            x_val=data.x_val,
            y_val=data.y_val,
        )
        if len(fb_x):
            metrics["teacher_feedback_val_accuracy_before"] = accuracy(predict_logits(teacher, fb_x), fb_y)
        config = TrainConfig(lr=s.refresh_lr, seed=s.seed, augment=augmentation_for(architecture))
        steps_per_epoch = -(-len(tuning.x_train) // config.batch_size)
        config = replace(config, epochs=max(3, min(s.refresh_epochs, s.refresh_max_steps // steps_per_epoch)))
        metrics["teacher_refresh_epochs"] = float(config.epochs)
        train_classifier(teacher, tuning, config)
        after = accuracy(predict_logits(teacher, splits.x_val), splits.y_val)
        metrics |= {"teacher_clean_val_accuracy_before": before, "teacher_clean_val_accuracy_after": after}
        if len(fb_x):
            metrics["teacher_feedback_val_accuracy_after"] = accuracy(predict_logits(teacher, fb_x), fb_y)
        if after < before - s.max_accuracy_drop:
            log.warning(
                "teacher refresh would lose %.1f pt of clean accuracy; keeping the old teacher",
                (before - after) * 100,
            )
            return None
        tags = {
            "lifecycle.role": "teacher", "lifecycle.recipe": "retrain-teacher-refresh",
            "lifecycle.parent_version": teacher_version, "lifecycle.retrain_job": str(job_id),
            "lifecycle.retrain_run_id": run_id or "", "lifecycle.feedback_rows": str(len(x_fb)),
            "lifecycle.pseudo_label_rows": str(len(x_pseudo)),
        }  # fmt: skip
        package = package_torch_model(model, teacher, splits, architecture=architecture, tags=tags)
        version = self._registry.register(package).version
        log.info("teacher v%s refreshed on %d feedback rows as v%s", teacher_version, len(x_fb), version)
        return version, OrtRunner(package.onnx_model)

    def _student(
        self, local: LocalVersion, teacher_local: LocalVersion, splits: DataSplits
    ) -> tuple[torch.nn.Module, Architecture]:
        """A fresh network of the champion's own architecture (or the family's student)."""
        arch_file = local.files_dir / ARCHITECTURE_FILE
        if arch_file.exists():
            architecture = Architecture.from_json(arch_file.read_text())
        else:
            teacher_arch = teacher_local.files_dir / ARCHITECTURE_FILE
            parent = Parent.of_splits(
                local.name, local.version, local.onnx_path.read_bytes(), local.contract, splits,
                architecture=Architecture.from_json(teacher_arch.read_text()) if teacher_arch.exists() else None,
            )  # fmt: skip
            architecture = student_architecture(parent)
        torch.manual_seed(self.settings.seed)
        student = architecture.build()
        if isinstance(student, TabularMLP):
            student.fit_normalizer(torch.from_numpy(splits.x_train))
        return student, architecture

    def _quantize(
        self,
        model: str,
        version: str,
        onnx_model: bytes,
        contract: ModelContract,
        splits: DataSplits,
        lineage: dict[str, str],
        work: Path,
        metrics: dict[str, float],
    ) -> str | None:
        """Register an INT8 variant of the new student when it keeps accuracy within 0.5 pt."""
        try:
            variant = int8_static(
                Parent.of_splits(model, version, onnx_model, contract, splits), RecipeOptions(), work / "int8"
            )
        except LifecycleError as exc:
            log.warning("INT8 of the retrained student failed (%s); rolling out the fp32 student", exc)
            return None
        int8_bytes = variant.files["model.onnx"].read_bytes()
        fp32 = accuracy(run_batched(OrtRunner(onnx_model), splits.x_val), splits.y_val)
        int8 = accuracy(run_batched(OrtRunner(int8_bytes), splits.x_val), splits.y_val)
        metrics["int8_clean_val_accuracy"] = int8
        if int8 < fp32 - 0.005:
            log.warning("INT8 student loses %.2f pt; rolling out the fp32 student", (fp32 - int8) * 100)
            return None
        tags = {
            **lineage,
            "lifecycle.role": "variant",
            "lifecycle.recipe": "ort-int8-static",
            "lifecycle.parent_version": version,
        }
        return self._registry.register(
            package_onnx_model(model, int8_bytes, splits, contract=contract, tags=tags)
        ).version

    def _start_run(self, model: str, trigger: str, trigger_ref: str) -> str | None:
        if self._tracker is None:
            return None
        try:
            run_id = self._tracker.start_run(f"retrain-{model}", tags={"lifecycle.model": model, "lifecycle.trigger": trigger,
                                                                       "lifecycle.trigger_ref": trigger_ref[:4000]})  # fmt: skip
            self._tracker.log_params(run_id, self.settings.model_dump(mode="json"))
            return run_id
        except LifecycleError:
            log.exception("could not start the retrain's MLflow run")
            return None

    def _end_run(self, run_id: str | None, status: str) -> None:
        if run_id is not None and self._tracker is not None:
            try:
                self._tracker.end_run(run_id, status)
            except LifecycleError:
                log.exception("could not end the retrain's MLflow run")
