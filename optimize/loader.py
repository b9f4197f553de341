"""Load a variant (or a parent) into the runtime adapter that executes it."""

from __future__ import annotations

from collections.abc import Mapping

from lifecycle.runtimes.base import Runner
from lifecycle.runtimes.load import load_runner
from optimize.variant import Variant


def load_variant(
    variant: Variant, *, threads: int = 0, item_shapes: Mapping[str, tuple[int, ...]] | None = None
) -> Runner:
    return load_runner(
        variant.files, variant.runtime, inference_precision=variant.inference_precision, threads=threads,
        item_shapes=item_shapes,
    )  # fmt: skip
