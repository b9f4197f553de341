"""``lifecycle-demo``: the whole loop against the running stack (``make run``), step by step.

train → optimize → champion → traffic → challenger by alias → shadow → canary → promoted → a shift in
the traffic → drift check and alert → distillation retrain → new challenger → canary → promoted.
Every step goes through the product's own interfaces: the MLflow registry (aliases and tags), the
control plane's HTTP API, the serving API and the shared database. Nothing is simulated but the
clients: the traffic is real HTTP requests, the labels real feedback calls.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from numpy.typing import NDArray
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from cli.optimize import table as optimize_table
from cli.render import versions_table
from cli.workflows import SEED_EXAMPLE, SEED_MODEL, seed_variants, train_and_register
from control.compose import local_retrainer
from control.services import Services
from demo.summary import SHIFT, Summary, verdict_line
from demo.traffic import Traffic
from lifecycle.alerts import Alerter
from lifecycle.data import DataSplits
from lifecycle.db import session_factory
from lifecycle.errors import LifecycleError
from lifecycle.examples import get_example
from lifecycle.names import CHALLENGER, CHAMPION
from lifecycle.runtimes.base import run_batched
from lifecycle.runtimes.load import load_version
from lifecycle.training import accuracy
from monitoring.shifts import window
from retrain.jobs import RetrainJob, RetrainJobs

STUDENT_RECIPE = "distill+ort-int8-static"
FAST_POLICY = {
    "lifecycle.rollout.interval_s": "3",
    "lifecycle.rollout.steps": "10,50,100",
    "lifecycle.rollout.min_shadow_pairs": "150",
    "lifecycle.rollout.min_canary_requests": "30",
    "lifecycle.rollout.min_canary_pairs": "20",
    # a distilled student is another network than its teacher: 95 % top-1 agreement, not 98 %
    "lifecycle.rollout.min_agreement": "0.95",
    # … and calibrated differently: a student distilled at T = 2 is less sure of itself
    "lifecycle.rollout.max_confidence_divergence": "0.35",
}
"""Per-model rollout settings, as registered-model tags (the MLflow UI shows and edits them): a
demo-sized analysis interval and sample sizes instead of the production defaults."""
TERMINAL = {"promoted", "rolled_back", "aborted"}


class DemoError(LifecycleError):
    """The tour could not go on; the message says where and why."""


class Tour:
    def __init__(
        self,
        services: Services,
        control_url: str,
        serving_url: str,
        token: str,
        console: Console,
        *,
        rps: float = 40.0,
        step_timeout_s: float = 600.0,
        seed: int = 0,
    ) -> None:
        self.services, self.registry = services, services.registry
        self.control_url, self.serving_url = control_url.rstrip("/"), serving_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}", "X-Actor": "lifecycle-demo"}
        self.console, self.rps, self.timeout_s, self.seed = console, rps, step_timeout_s, seed
        self.sessions = session_factory(services.engine)
        self.summary = Summary()
        self.model = SEED_MODEL
        self._rng = np.random.default_rng(seed)

    # --- the tour -------------------------------------------------------------------------------

    def run(self) -> Summary:
        started = time.perf_counter()
        self._check_stack()
        data = get_example(SEED_EXAMPLE).load_data(self.seed)
        with self._step("1. train: the teacher"):
            teacher = self._teacher()
        with self._step("2. optimize: a distilled INT8 student"):
            student = self._student(teacher)
        with self._step("3. per-model rollout policy (registered-model tags)"):
            self._policy()
        # traffic: the validation images; the test images are kept for step 8, never served or learned from
        pool_x, pool_y = data.x_val, data.y_val
        traffic = Traffic(self.serving_url, pool_x, pool_y, rps=self.rps, seed=self.seed).start()
        try:
            self.console.print(f"   traffic: {self.rps:.0f} requests/s of clean digits to {self.serving_url}")
            with self._step("4. challenger via alias → shadow → canary → promoted"):
                self.registry.set_alias(self.model, CHALLENGER, student, actor="lifecycle-demo")
                self.console.print(f"   set {self.model}@{CHALLENGER} = v{student} (as the MLflow UI does)")
                self._follow(student)
            with self._step("5. shift injected: rotated, moved, zoomed digits; 5 % labeled"):
                shifted = self._shifted(pool_x)
                traffic.switch(shifted, pool_y, feedback_share=0.05)
                self._shifted_traffic(traffic, int(20 * self.rps))
                known = {j.id for j in RetrainJobs(self.sessions).history(self.model, 50)}
                check = self._drift()
            with self._step("6. drift alert → distillation retrain → challenger"):
                job = self._retrain(check, known)
            with self._step("7. retrained challenger → shadow → canary → promoted"):
                assert job.challenger_version is not None
                self._follow(job.challenger_version)
        finally:
            stats = traffic.stop()
        self.summary.traffic = {
            "sent": stats.sent, "answered": stats.answered, "failed": stats.failed,
            "feedback": stats.feedback, "errors": stats.errors,
            "served_by": {f"v{v} {role}": n for (v, role), n in sorted(stats.served_by.items())},
        }  # fmt: skip
        with self._step("8. accuracy before and after"):
            self._evaluate(data)
        self.summary.links["model"] = f"{self.registry.ui_url}/#/models/{self.model}"
        self.summary.seconds = time.perf_counter() - started
        return self.summary

    # --- steps ----------------------------------------------------------------------------------

    def _check_stack(self) -> None:
        for name, url in (
            ("control plane", f"{self.control_url}/healthz"),
            ("serving", f"{self.serving_url}/readyz"),
        ):
            try:
                ok = httpx.get(url, timeout=5).status_code == 200
            except httpx.HTTPError:
                ok = False
            if not ok:
                raise DemoError(f"{name} is not ready at {url}; start the stack with `make run` first")

    def _teacher(self) -> str:
        aliases = self.registry.aliases(self.model) if self.model in self.registry.list_models() else {}
        teachers = [
            v for v in self.registry.list_versions(self.model) if v.tags.get("lifecycle.recipe") == "train"
        ] if aliases else []  # fmt: skip
        if teachers:
            teacher = teachers[0]
            self.console.print(
                f"   {self.model} v{teacher.version}: {teacher.tags.get('lifecycle.example', '')} "
                f"(seeded by `make run`), test accuracy {teacher.metrics.get('test_accuracy', float('nan')):.4f}"
            )
        else:
            with self.console.status("training the digits teacher…"):
                trained = train_and_register(
                    self.registry, SEED_EXAMPLE, model_name=self.model, seed=self.seed, alias=CHAMPION,
                    actor="lifecycle-demo",
                )  # fmt: skip
            teacher = trained.version
            self.console.print(
                f"   trained {self.model} v{teacher.version} in {trained.result.seconds:.0f} s, "
                f"test accuracy {teacher.metrics['test_accuracy']:.4f}"
            )
        if CHAMPION not in self.registry.aliases(self.model):
            self.registry.set_alias(self.model, CHAMPION, teacher.version, actor="lifecycle-demo")
        self.summary.versions["teacher"] = teacher.version
        return teacher.version

    def _student(self, teacher: str) -> str:
        """The newest distilled INT8 student newer than the champion (seeded by ``make run``), or a
        new optimize run that makes one."""
        champion = int(self.registry.aliases(self.model)[CHAMPION])
        versions = self.registry.list_versions(self.model)
        fresh = [
            v
            for v in versions
            if v.tags.get("lifecycle.recipe") == STUDENT_RECIPE and int(v.version) > champion
        ]
        if fresh:
            self.console.print(
                versions_table(
                    f"{self.model}: versions (optimized by `make run`)", versions, self.console.width
                )
            )
            student = fresh[-1]
            run_id = student.tags.get("lifecycle.optimize_run_id")
            if run_id:
                self.summary.links["optimize run"] = self.registry.run_url(run_id)
        else:
            with self.console.status("optimizing…") as status, tempfile.TemporaryDirectory() as tmp:
                report = seed_variants(
                    self.registry, teacher, Path(tmp), recipes=("ort-int8-static", STUDENT_RECIPE),
                    progress=lambda msg: status.update(msg),
                )  # fmt: skip
            self.console.print(
                optimize_table(report.rows, f"{self.model} v{teacher}: variants", self.console.width)
            )
            self.summary.links["optimize run"] = report.run_url
            made = [r for r in report.rows if r.name == STUDENT_RECIPE and r.version]
            if not made:
                raise DemoError(f"optimization registered no {STUDENT_RECIPE} variant: {report.rows}")
            student = self.registry.get_version(self.model, str(made[0].version))
        self.console.print(
            f"   challenger-to-be: v{student.version} ({STUDENT_RECIPE}), "
            f"test accuracy {student.metrics.get('accuracy', float('nan')):.4f}"
        )
        self.summary.versions["distilled student"] = student.version
        return student.version

    def _policy(self) -> None:
        table = Table(title=f"{self.model}: rollout tags", title_justify="left")
        table.add_column("tag")
        table.add_column("value", justify="right")
        for key, value in FAST_POLICY.items():
            self.registry.set_model_tag(self.model, key, value)
            table.add_row(key, value)
        self.console.print(table)

    def _follow(self, challenger: str) -> dict[str, Any]:
        """Show the rollout's progress (the challenger's share of traffic) and print its phases and
        verdicts until it ends; it must end promoted."""
        seen_verdicts: set[str] = set()
        where = ""
        deadline = time.monotonic() + self.timeout_s
        with Progress(
            TextColumn("   rollout of v{task.fields[challenger]}"), BarColumn(),
            TextColumn("{task.completed:>3.0f} % to the challenger · {task.description}"), TimeElapsedColumn(),
            console=self.console,
        ) as progress:  # fmt: skip
            bar = progress.add_task("waiting for the control plane", total=100, challenger=challenger)
            while time.monotonic() < deadline:
                status = self._control_get(f"/rollouts/{self.model}?verdicts=3")
                if status is None or status["rollout"]["challenger"] != challenger:
                    time.sleep(0.5)
                    continue
                rollout = status["rollout"]
                share = rollout["traffic"]
                done = 100.0 if rollout["phase"] == "promoted" else 100.0 * share["canary"]
                progress.update(bar, completed=done, description=rollout["where"])
                if rollout["where"] != where:
                    where = rollout["where"]
                    progress.console.print(
                        f"   [bold]{where}[/]: canary {share['canary']:.0%} of traffic, mirrored {share['mirror']:.0%}"
                    )
                for verdict in reversed(status["verdicts"]):
                    if verdict["ts"] not in seen_verdicts:
                        seen_verdicts.add(verdict["ts"])
                        progress.console.print(f"     verdict: {verdict_line(verdict)}")
                if rollout["phase"] in TERMINAL:
                    break
                time.sleep(0.5)
            else:
                raise DemoError(f"the rollout of v{challenger} did not end within {self.timeout_s:.0f} s")
        if rollout["phase"] != "promoted":
            raise DemoError(f"the rollout of v{challenger} ended {rollout['phase']}: {rollout['reason']}")
        self.console.print(f"   {self.model}@{CHAMPION} = v{self.registry.aliases(self.model)[CHAMPION]}")
        return dict(rollout)

    def _shifted(self, x: NDArray[np.float32]) -> NDArray[np.float32]:
        labels = np.zeros(len(x), dtype=np.int64)
        return np.stack(
            [window(row[None], labels[:1], 1, SHIFT, self._rng, image_shape=(8, 8))[0] for row in x]
        ).astype(np.float32)

    def _shifted_traffic(self, traffic: Traffic, needed: int) -> None:
        before = traffic.snapshot().answered
        deadline = time.monotonic() + self.timeout_s
        with Progress(
            TextColumn("   shifted requests answered"),
            BarColumn(),
            MofNCompleteColumn(),
            console=self.console,
        ) as progress:
            bar = progress.add_task("shifted", total=needed)
            while (done := traffic.snapshot().answered - before) < needed:
                if time.monotonic() > deadline:
                    raise DemoError(
                        f"only {done} of {needed} shifted requests answered in {self.timeout_s:.0f} s"
                    )
                progress.update(bar, completed=done)
                time.sleep(0.25)
            progress.update(bar, completed=needed)

    def _drift(self) -> dict[str, Any]:
        for _ in range(3):
            response = self._control_post("/monitor/run-now", {"model": self.model})
            check: dict[str, Any] = response["checks"][0]
            table = Table(title=f"drift check {check['id']} of v{check['version']}: {check['summary']}")
            for column in ("detector", "statistic", "p-value", "drift"):
                table.add_column(column, justify="left" if column == "detector" else "right")
            for d in check["detectors"]:
                table.add_row(
                    str(d.get("name")), f"{d.get('statistic', float('nan')):.3f}",
                    f"{d.get('p_value', float('nan')):.2e}", "yes" if d.get("drift") else "no",
                )  # fmt: skip
            self.console.print(table)
            if check["drift"]:
                alerts = Alerter(self.sessions).recent(limit=5, source="drift")
                if alerts:
                    a = alerts[0]
                    self.console.print(f"   alert #{a.id} [{a.alert.severity.value}] {a.alert.title}")
                if check.get("mlflow_run_id"):
                    self.summary.links["drift check run"] = self.registry.run_url(check["mlflow_run_id"])
                return check
            time.sleep(10)
        raise DemoError("three drift checks found no drift in the shifted traffic")

    def _retrain(self, check: dict[str, Any], known: set[int]) -> RetrainJob:
        """Wait for the retrain job the drift alert started (any job not in ``known``). When none starts
        within 30 s (the automatic trigger is cooling down after an earlier retrain, or the drift was
        below ``LIFECYCLE_RETRAIN_ON_DRIFT``), retrain here, as ``lifecycle retrain now`` would."""
        jobs = RetrainJobs(self.sessions)
        started = time.monotonic()
        with self.console.status("waiting for the retrain the drift alert triggers…") as status:
            while time.monotonic() - started < self.timeout_s:
                new = [j for j in jobs.history(self.model, 5) if j.id not in known]
                if new and new[0].status in {"succeeded", "failed"}:
                    break
                if new:
                    status.update(f"retrain job {new[0].id} ({new[0].trigger}) {new[0].status}…")
                elif time.monotonic() - started > 30:
                    status.update("no automatic retrain (cool-down or below the trigger): retraining here…")
                    new = [
                        local_retrainer(self.services, owner="lifecycle demo").run(
                            self.model, "manual", "lifecycle demo"
                        )
                    ]
                    break
                time.sleep(1)
            else:
                raise DemoError(f"no retrain finished within {self.timeout_s:.0f} s of the drift alert")
        job = new[0]
        if job.status != "succeeded" or job.challenger_version is None:
            raise DemoError(f"retrain job {job.id} failed: {job.error}")
        m = job.metrics
        self.console.print(
            f"   job {job.id} ({job.trigger}): teacher v{job.teacher_version}, {job.counts}; "
            f"{m.get('pseudo_label_rows', 0):.0f} pseudo-labels; student clean val accuracy "
            f"{m.get('student_clean_val_accuracy', float('nan')):.4f}; "
            f"v{job.challenger_version} set as {CHALLENGER} in {m.get('retrain_seconds', 0):.0f} s"
        )
        if job.run_id:
            self.summary.links["retrain run"] = self.registry.run_url(job.run_id)
        if job.teacher_version:
            self.summary.versions["refreshed teacher"] = job.teacher_version
        self.summary.versions["retrained student"] = job.challenger_version
        return job

    def _evaluate(self, data: DataSplits) -> None:
        shifted = self._shifted(data.x_test)
        with tempfile.TemporaryDirectory() as tmp:
            for version in dict.fromkeys(self.summary.versions.values()):
                v = self.registry.get_version(self.model, version)
                runner = load_version(
                    self.registry.download(self.model, version, Path(tmp) / version), dict(v.tags)
                )
                self.summary.accuracy[version] = (
                    accuracy(run_batched(runner, data.x_test), data.y_test),
                    accuracy(run_batched(runner, shifted), data.y_test),
                )

    # --- plumbing -------------------------------------------------------------------------------

    @contextmanager
    def _step(self, title: str) -> Iterator[None]:
        self.console.rule(f"[bold]{title}")
        started = time.perf_counter()
        yield
        seconds = time.perf_counter() - started
        self.summary.timings.append((title, seconds))
        self.console.print(f"   [green]done[/] in {seconds:.1f} s")

    def _control_get(self, path: str) -> dict[str, Any] | None:
        r = httpx.get(f"{self.control_url}{path}", timeout=30)
        if r.status_code == 404:
            return None
        r.raise_for_status()
        return dict(r.json())

    def _control_post(self, path: str, body: dict[str, str]) -> dict[str, Any]:
        r = httpx.post(f"{self.control_url}{path}", json=body, headers=self._headers, timeout=120)
        if r.status_code >= 400:
            raise DemoError(f"control plane {path}: HTTP {r.status_code}: {r.text[:300]}")
        return dict(r.json())
