"""Monitoring settings (``LIFECYCLE_MONITOR_*``)."""

from __future__ import annotations

from typing import Annotated, Literal

from annotated_types import Ge, Gt, Le
from pydantic_settings import BaseSettings, SettingsConfigDict


class MonitorSettings(BaseSettings):
    """The scheduled drift monitor: which models, how often, on how many served requests."""

    model_config = SettingsConfigDict(env_prefix="LIFECYCLE_MONITOR_", extra="forbid")

    enabled: bool = True
    """Run the scheduled monitor in the control plane."""
    interval_s: Annotated[float, Gt(0)] = 300.0
    """How often each served model is checked."""
    models: list[str] = []
    """Models to monitor; empty: every registered model with a ``champion`` alias."""
    window_size: Annotated[int, Ge(1)] = 1000
    """The window is the last N predictions answered by the champion …"""
    window_minutes: Annotated[float, Gt(0)] = 60.0
    """… within the last T minutes."""
    min_window: Annotated[int, Ge(2)] = 100
    """Below this many rows no verdict is given."""
    alpha: Annotated[float, Gt(0), Le(0.5)] = 0.05
    """Family-wise false-alarm rate of one check on an unshifted window."""
    report: Literal["on_drift", "always", "never"] = "on_drift"
    """When to render Evidently's HTML report into the check's MLflow run (it takes seconds)."""
    experiment: str = "lifecycle-monitoring"
    """MLflow experiment that each check is logged to as a run."""
    alert_cooldown_s: Annotated[float, Ge(0)] = 3600.0
    """An alert with the same key (model, version, severity) is not sent again within this time."""
