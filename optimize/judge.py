"""A candidate's task metric against its parent's, by the quality gate's own rule: what INT8
escalation and the optimization run both ask."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from numpy.typing import NDArray

from lifecycle.evaluate import Evaluation, evaluate
from lifecycle.runtimes.base import NamedRunner, run_named_batched
from lifecycle.runtimes.onnxruntime import OrtRunner
from lifecycle.samples import Samples
from optimize.gates import GateConfig, GateResult, Quality, quality_gate
from optimize.variant import Parent


class Judge:
    """The parent's outputs on one split, evaluated once; candidates are compared with them."""

    def __init__(self, parent: Parent, split: str, config: GateConfig) -> None:
        self.contract = parent.contract
        self.config = config
        self.samples: Samples = parent.data.split(split)
        self.reference = run_named_batched(OrtRunner(parent.onnx_model), self.samples.inputs)
        self.parent: Evaluation = evaluate(self.contract, self.reference, self.samples)

    def outputs_of(self, runner: NamedRunner) -> dict[str, NDArray[Any]]:
        return run_named_batched(runner, self.samples.inputs)

    def evaluate(self, outputs: Mapping[str, NDArray[Any]]) -> Evaluation:
        return evaluate(self.contract, outputs, self.samples, reference=self.reference)

    def quality(self, candidate: Evaluation) -> Quality:
        return Quality(
            candidate.metric, self.parent.value, candidate.value, self.parent.metrics.get("scale", 1.0)
        )

    def gate(self, candidate: Evaluation) -> GateResult:
        return quality_gate(self.config, self.quality(candidate))

    @staticmethod
    def score(candidate: Evaluation) -> float:
        """Larger is better, whatever the metric's direction (for rankings)."""
        return candidate.value if candidate.higher_is_better else -candidate.value
