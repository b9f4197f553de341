"""torch eager adapter: the reference every export is compared with."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn


class TorchRunner:
    runtime = "torch"

    def __init__(
        self,
        module: nn.Module,
        *,
        input_names: Sequence[str] = ("x",),
        output_names: Sequence[str] = ("logits",),
    ) -> None:
        self._module = module.eval()
        self.input_names, self.output_names = tuple(input_names), tuple(output_names)
        dtypes = {p.dtype for p in module.parameters()}
        self.precision = "fp16" if dtypes == {torch.float16} else "fp32"

    @torch.inference_mode()
    def run(self, x: NDArray[np.float32]) -> NDArray[np.float32]:
        out = self._module(torch.from_numpy(x))
        return np.asarray(out.float().numpy(), dtype=np.float32)

    @torch.inference_mode()
    def run_named(self, feeds: Mapping[str, NDArray[Any]]) -> dict[str, NDArray[Any]]:
        out = self._module(*(torch.from_numpy(np.ascontiguousarray(feeds[n])) for n in self.input_names))
        outs = out if isinstance(out, tuple | list) else (out,)
        return {name: o.float().numpy() for name, o in zip(self.output_names, outs, strict=True)}
