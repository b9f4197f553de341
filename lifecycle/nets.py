"""Reference network architectures. Every network takes raw features ``[batch, n_features]`` and
returns logits, with its input normalisation inside, so an export needs no preprocessing code."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from lifecycle.errors import UnknownModelError


class BasicBlock(nn.Module):
    """Two 3×3 convolutions with batch norm and an identity (or 1×1 projection) shortcut."""

    def __init__(self, c_in: int, c_out: int, stride: int, mid: int | None = None) -> None:
        super().__init__()
        mid = mid or c_out  # structured pruning narrows only the inner width
        self.conv1 = nn.Conv2d(c_in, mid, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(mid)
        self.conv2 = nn.Conv2d(mid, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out)
            )

    def forward(self, x: Tensor) -> Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class ImageResNet(nn.Module):
    """Residual CNN for small square images given as flat pixel vectors.

    The image is upsampled inside the network (8×8 → 32×32 for digits) so that convolutions have
    enough spatial extent to matter: real compute per request while each request carries few numbers.
    """

    def __init__(
        self,
        side: int,
        n_classes: int,
        *,
        upsample_to: int = 32,
        widths: tuple[int, ...] = (32, 64, 128, 256),
        mids: tuple[int, ...] | None = None,
        pixel_scale: float = 16.0,
    ) -> None:
        super().__init__()
        self.side = side
        self.pixel_scale = pixel_scale
        self.upsample = nn.Upsample(size=(upsample_to, upsample_to), mode="bilinear", align_corners=False)
        self.stem = nn.Sequential(
            nn.Conv2d(1, widths[0], 3, padding=1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU()
        )
        blocks: list[nn.Module] = []
        c_in = widths[0]
        inner = mids or widths
        if len(inner) != len(widths):
            raise ValueError(f"mids {mids} must have one entry per stage ({len(widths)})")
        for i, width in enumerate(widths):
            blocks.append(BasicBlock(c_in, width, stride=1 if i == 0 else 2, mid=inner[i]))
            c_in = width
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(c_in, n_classes)

    def forward(self, x: Tensor) -> Tensor:
        img = (x / self.pixel_scale).reshape(-1, 1, self.side, self.side)
        feats = self.blocks(self.stem(self.upsample(img)))
        logits: Tensor = self.head(feats.mean(dim=(2, 3)))
        return logits


class SmallCNN(nn.Module):
    """The student: a few thousand to tens of thousands of parameters, working on the native image."""

    def __init__(self, side: int, n_classes: int, *, width: int = 16, pixel_scale: float = 16.0) -> None:
        super().__init__()
        self.side = side
        self.pixel_scale = pixel_scale
        self.features = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(2 * width, 2 * width, 3, padding=1),
            nn.ReLU(),
        )
        self.head = nn.Linear(2 * width, n_classes)

    def forward(self, x: Tensor) -> Tensor:
        img = (x / self.pixel_scale).reshape(-1, 1, self.side, self.side)
        logits: Tensor = self.head(self.features(img).mean(dim=(2, 3)))
        return logits


class TabularMLP(nn.Module):
    """Standardise with training statistics (buffers, exported with the model), then an MLP."""

    mean: Tensor
    std: Tensor

    def __init__(self, n_features: int, n_classes: int, *, hidden: tuple[int, ...] = (64, 32)) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("std", torch.ones(n_features))
        layers: list[nn.Module] = []
        c_in = n_features
        for width in hidden:
            layers += [nn.Linear(c_in, width), nn.ReLU()]
            c_in = width
        layers.append(nn.Linear(c_in, n_classes))
        self.mlp = nn.Sequential(*layers)

    def fit_normalizer(self, x: Tensor) -> TabularMLP:
        self.mean.copy_(x.mean(dim=0))
        self.std.copy_(x.std(dim=0).clamp_min(1e-6))
        return self

    def forward(self, x: Tensor) -> Tensor:
        logits: Tensor = self.mlp((x - self.mean) / self.std)
        return logits


ARCHITECTURES: dict[str, type[nn.Module]] = {
    "ImageResNet": ImageResNet,
    "SmallCNN": SmallCNN,
    "TabularMLP": TabularMLP,
}
IMAGE_ARCHITECTURES = frozenset({"ImageResNet", "SmallCNN"})


@dataclass(frozen=True)
class Architecture:
    """How to rebuild a network before loading its weights: no pickled modules, ever."""

    cls: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)

    def build(self) -> nn.Module:
        try:
            factory = ARCHITECTURES[self.cls]
        except KeyError:
            raise UnknownModelError(
                f"architecture {self.cls!r} is not built in; known: {sorted(ARCHITECTURES)}"
            ) from None
        return factory(*self.args, **self.kwargs)

    @property
    def image_side(self) -> int | None:
        """Side of the square image an image network reads (its first argument); None for tables."""
        return int(self.args[0]) if self.cls in IMAGE_ARCHITECTURES and self.args else None

    def to_json(self) -> str:
        return json.dumps({"cls": self.cls, "args": list(self.args), "kwargs": self.kwargs})

    @classmethod
    def from_json(cls, text: str) -> Architecture:
        raw = json.loads(text)
        kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in raw.get("kwargs", {}).items()}
        return cls(cls=raw["cls"], args=tuple(raw.get("args", ())), kwargs=kwargs)


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
