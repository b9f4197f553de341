"""torch eager adapter: the reference every export is compared with."""

from __future__ import annotations

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn


class TorchRunner:
    runtime = "torch"

    def __init__(self, module: nn.Module) -> None:
        self._module = module.eval()
        dtypes = {p.dtype for p in module.parameters()}
        self.precision = "fp16" if dtypes == {torch.float16} else "fp32"

    @torch.inference_mode()
    def run(self, x: NDArray[np.float32]) -> NDArray[np.float32]:
        out = self._module(torch.from_numpy(x))
        return np.asarray(out.float().numpy(), dtype=np.float32)
