"""Evidently's HTML drift report for a check (imported only when a report is rendered)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import NDArray


def render_report(
    reference: NDArray[np.float32],
    current: NDArray[np.float32],
    feature_names: list[str],
    confidence: tuple[NDArray[np.float64], NDArray[np.float64]],
    path: Path,
) -> Path:
    """Per-feature drift with the same pinned method as the detector (``ks``), plus the champion's
    confidence as a column, written as a self-contained HTML file."""
    from evidently import Report
    from evidently.presets import DataDriftPreset

    columns = [*feature_names, "confidence"]
    ref = pd.DataFrame(np.column_stack([reference, confidence[0]]), columns=columns)
    cur = pd.DataFrame(np.column_stack([current, confidence[1]]), columns=columns)
    snapshot = Report([DataDriftPreset(method="ks")]).run(current_data=cur, reference_data=ref)
    path.parent.mkdir(parents=True, exist_ok=True)
    snapshot.save_html(str(path))
    return path
