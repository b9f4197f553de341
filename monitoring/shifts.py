"""Dataset shifts after "Failing Loudly" (Rabanser et al., NeurIPS 2019), for tests and benchmarks.

Families: Gaussian noise, image shifts (random rotation, translation, zoom), class knock-out; each
at an intensity, applied to a ``fraction`` of a window. Shifted values stay in the data's domain
(clipped to the observed range, and rounded when the data are integer-valued, e.g. 0–16 pixels),
so a detector cannot win on an artefact such as non-integer pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.ndimage import affine_transform

NOISE_STD = {"small": 1.0, "medium": 2.5, "large": 5.0}
"""Noise standard deviation, in units of 1/16 of the feature range (1 grey level of 16 for digits)."""
IMAGE = {"small": (10.0, 0.05, 0.1), "medium": (40.0, 0.2, 0.2), "large": (90.0, 0.4, 0.4)}
"""Largest rotation (degrees), translation (share of the side) and zoom (±share), as in Failing Loudly."""
FAMILIES = ("noise", "image", "knockout")


@dataclass(frozen=True)
class Shift:
    family: str
    """``none``, ``noise``, ``image`` or ``knockout``."""
    intensity: str = "small"
    fraction: float = 1.0

    def __str__(self) -> str:
        if self.family == "none":
            return "none"
        if self.family == "knockout":
            return f"knockout {self.fraction:g}"
        return f"{self.family} {self.intensity} {self.fraction:g}"


NONE = Shift("none")


def window(
    pool_x: NDArray[np.float32],
    pool_y: NDArray[np.int64],
    n: int,
    shift: Shift,
    rng: np.random.Generator,
    *,
    image_shape: tuple[int, int] | None = None,
    knocked_out: int = 0,
) -> NDArray[np.float32]:
    """``n`` rows drawn without replacement from the pool (with replacement only when ``n`` exceeds
    it), with ``shift`` applied to a ``fraction`` of them."""
    if shift.family == "knockout":
        # a fraction of the knocked-out class's rows is removed from what can be drawn
        keep = (pool_y != knocked_out) | (rng.random(len(pool_y)) >= shift.fraction)
        candidates = np.flatnonzero(keep)
        idx = rng.choice(candidates, size=n, replace=n > len(candidates))
        return np.asarray(pool_x[idx], dtype=np.float32)
    idx = rng.choice(len(pool_x), size=n, replace=n > len(pool_x))
    x = pool_x[idx].copy()
    if shift.family == "none":
        return x
    chosen = rng.random(n) < shift.fraction
    low, high = float(pool_x.min()), float(pool_x.max())
    integer = bool(np.all(pool_x == np.round(pool_x)))
    if shift.family == "noise":
        std = NOISE_STD[shift.intensity] * (high - low) / 16.0
        x[chosen] += rng.normal(0.0, std, size=x[chosen].shape).astype(np.float32)
    elif shift.family == "image":
        if image_shape is None:
            raise ValueError("image shifts need image_shape")
        x[chosen] = (
            np.stack([_transform(row, image_shape, shift.intensity, rng) for row in x[chosen]])
            if chosen.any()
            else x[chosen]
        )
    else:
        raise ValueError(f"unknown shift family {shift.family!r}; one of none, {', '.join(FAMILIES)}")
    x = np.clip(x, low, high)
    return np.asarray(np.round(x) if integer else x, dtype=np.float32)


def _transform(
    row: NDArray[np.float32], shape: tuple[int, int], intensity: str, rng: np.random.Generator
) -> NDArray[np.float32]:
    degrees, translation, zoom = IMAGE[intensity]
    angle = np.deg2rad(rng.uniform(-degrees, degrees))
    scale = rng.uniform(1 - zoom, 1 + zoom)
    shift = rng.uniform(-translation, translation, size=2) * np.asarray(shape)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]) / scale
    centre = (np.asarray(shape) - 1) / 2.0
    offset = centre - rotation @ (centre + shift)
    image = affine_transform(row.reshape(shape), rotation, offset=offset, order=1, mode="constant", cval=0.0)
    return np.asarray(image.reshape(-1), dtype=np.float32)
