"""CPU facts that decide quantization settings, read from /proc/cpuinfo (Linux)."""

from __future__ import annotations

import functools
import platform
from pathlib import Path


@functools.cache
def cpu_flags() -> frozenset[str]:
    info = Path("/proc/cpuinfo")
    if not info.exists():
        return frozenset()
    for line in info.read_text().splitlines():
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def has_vnni() -> bool:
    return bool({"avx512_vnni", "avx_vnni"} & cpu_flags())


def cpu_summary() -> str:
    interesting = sorted(f for f in cpu_flags() if f.startswith(("avx512", "avx_vnni", "amx", "avx2")))
    return f"{platform.machine()} {' '.join(interesting)}"
