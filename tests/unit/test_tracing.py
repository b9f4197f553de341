"""The predict routes skip BentoML's tracing middleware only while tracing samples nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

SCRIPT = "import json; from serving.tracing import untraced_when_sampling_off as f; print(json.dumps(f()))"


def _config(options: str) -> dict[str, object]:
    env = {**os.environ, "BENTOML_CONFIG_OPTIONS": options, "BENTOML_DO_NOT_TRACK": "true"}
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, check=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ("", {"excluded_urls": ["/v1/predict$", "/v1/predict_array$"]}),
        ("tracing.sample_rate=0.0", {"excluded_urls": ["/v1/predict$", "/v1/predict_array$"]}),
        ("tracing.sample_rate=0.5", {}),  # tracing on: every route keeps its span
        (
            "tracing.excluded_urls=/healthz",
            {"excluded_urls": ["/healthz", "/v1/predict$", "/v1/predict_array$"]},
        ),
    ],
)
def test_bentoml_tracing_configuration_decides(options: str, expected: dict[str, object]) -> None:
    assert _config(options) == expected
