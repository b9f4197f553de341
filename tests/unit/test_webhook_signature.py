from __future__ import annotations

import pytest

from registry.webhooks import WebhookSignatureError, sign, verify

BODY = b'{"entity":"model_version_alias","action":"created"}'


def headers(secret: str = "s3cr3t", ts: str = "1000", body: bytes = BODY) -> dict[str, str]:
    return {
        "X-MLflow-Delivery-Id": "d-1",
        "X-MLflow-Timestamp": ts,
        "X-MLflow-Signature": sign(secret, "d-1", ts, body),
    }


def test_valid_delivery() -> None:
    assert verify("s3cr3t", headers(), BODY, now=1010) == "d-1"


@pytest.mark.parametrize(
    ("hdrs", "body", "now", "message"),
    [
        (headers(secret="wrong"), BODY, 1000, "does not match"),
        (headers(), BODY + b" ", 1000, "does not match"),
        (headers(), BODY, 2000, "away from now"),
        ({"X-MLflow-Timestamp": "1000"}, BODY, 1000, "missing header"),
        ({**headers(), "X-MLflow-Timestamp": "soon"}, BODY, 1000, "not a unix time"),
    ],
)
def test_forged_replayed_or_incomplete_deliveries_are_refused(
    hdrs: dict[str, str], body: bytes, now: float, message: str
) -> None:
    with pytest.raises(WebhookSignatureError, match=message):
        verify("s3cr3t", hdrs, body, now=now)
