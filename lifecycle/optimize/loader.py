"""Load a variant (or a parent) into the runtime adapter that executes it."""

from __future__ import annotations

from lifecycle.optimize.variant import Variant
from lifecycle.runtimes.base import Runner
from lifecycle.runtimes.load import load_runner


def load_variant(variant: Variant, *, threads: int = 0) -> Runner:
    return load_runner(
        variant.files, variant.runtime, inference_precision=variant.inference_precision, threads=threads
    )
