"""Verification of MLflow 3 webhook deliveries (Standard-Webhooks style HMAC-SHA256).

MLflow signs ``f"{delivery_id}.{timestamp}.{raw_body}"`` with the webhook's secret and sends
``X-MLflow-Signature: v1,<base64 digest>``, ``X-MLflow-Delivery-Id`` and ``X-MLflow-Timestamp``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Mapping

from lifecycle.errors import LifecycleError

SIGNATURE_HEADER = "X-MLflow-Signature"
DELIVERY_ID_HEADER = "X-MLflow-Delivery-Id"
TIMESTAMP_HEADER = "X-MLflow-Timestamp"


class WebhookSignatureError(LifecycleError):
    """A delivery is unsigned, forged, or too old (a replay)."""


def sign(secret: str, delivery_id: str, timestamp: str, body: bytes) -> str:
    payload = f"{delivery_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), payload, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    tolerance_s: float = 300.0,
    now: float | None = None,
) -> str:
    """Check signature and freshness of one delivery; return its delivery id.

    :raises WebhookSignatureError: naming what is missing or wrong.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    missing = [
        h for h in (SIGNATURE_HEADER, DELIVERY_ID_HEADER, TIMESTAMP_HEADER) if h.lower() not in lowered
    ]
    if missing:
        raise WebhookSignatureError(f"missing header(s): {', '.join(missing)}")
    delivery_id = lowered[DELIVERY_ID_HEADER.lower()]
    timestamp = lowered[TIMESTAMP_HEADER.lower()]
    try:
        sent_at = float(timestamp)
    except ValueError:
        raise WebhookSignatureError(f"timestamp {timestamp!r} is not a unix time") from None
    age = (time.time() if now is None else now) - sent_at
    if abs(age) > tolerance_s:
        raise WebhookSignatureError(f"timestamp is {age:.0f} s away from now (tolerance {tolerance_s:.0f} s)")
    expected = sign(secret, delivery_id, timestamp, body)
    offered = lowered[SIGNATURE_HEADER.lower()].split()
    if not any(hmac.compare_digest(expected, candidate) for candidate in offered):
        raise WebhookSignatureError("signature does not match the body")
    return delivery_id
