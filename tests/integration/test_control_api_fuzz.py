"""Schema fuzzing of the control plane's API (schemathesis, every check): no 5xx, no answer that
breaks the documented schema, no schema-valid request refused — every operation, with the admin
token (so that the admin routes are fuzzed past their authentication); with a fixed seed and a fresh one."""

from __future__ import annotations

import time

import pytest
import schemathesis
from hypothesis import HealthCheck, given, seed, settings

from control.app import create_app
from control.compose import build_control_plane
from control.services import connect
from control.settings import ControlSettings
from lifecycle.settings import Settings
from rollout.policy import RolloutPolicy


@pytest.mark.parametrize("fixed", [True, False], ids=["seed-0", "fresh-seed"])
def test_the_control_plane_holds_to_its_documented_schema(env: str, fixed: bool) -> None:
    services = connect(Settings())
    plane = build_control_plane(services, ControlSettings(webhooks=False), RolloutPolicy())
    headers = {"Authorization": f"Bearer {plane.admin_token}"}
    plane.start()  # the leader answers admin calls (a standby's 503 is documented, but a 5xx)
    try:
        deadline = time.monotonic() + 20
        while not plane.is_leader and time.monotonic() < deadline:
            time.sleep(0.1)
        assert plane.is_leader
        schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(plane))
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) >= 12
        for operation in operations:

            @given(case=operation.as_strategy())
            @settings(max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck))
            def fuzz(case: schemathesis.Case) -> None:
                case.call_and_validate(headers=headers)

            (seed(0)(fuzz) if fixed else fuzz)()
    finally:
        plane.stop()
        services.close()
