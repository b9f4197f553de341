"""Alerts reach a real SMTP server and a real HTTP receiver on loopback; a failing channel is
retried and recorded without breaking the caller; de-duplication holds within the cool-down."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import Engine

from lifecycle.alert_channels import AlertSettings, channels_from_settings
from lifecycle.alerts import Alert, Alerter
from lifecycle.db import session_factory
from lifecycle.db.types import utcnow
from lifecycle.names import Severity
from tests.conftest import free_port


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:  # noqa: N802 (aiosmtpd's hook name)
        self.messages.append(envelope.content)  # type: ignore[attr-defined]
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[int, _Inbox]]:
    inbox = _Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, inbox
    finally:
        controller.stop()


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[dict[str, object]]]]:
    received: list[dict[str, object]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    finally:
        server.shutdown()


ALERT = Alert("drift", Severity.CRITICAL, "drift:digits:v3:critical", "digits v3: critical drift",
              "input p=1e-9 on pixel_3_4", {"check_id": 7})  # fmt: skip


def test_alerts_reach_smtp_and_webhook_and_are_stored(
    migrated_engine: Engine, smtp: tuple[int, _Inbox], receiver: tuple[str, list[dict[str, object]]]
) -> None:
    port, inbox = smtp
    url, received = receiver
    settings = AlertSettings(
        webhook_url=url, smtp_host="127.0.0.1", smtp_port=port, smtp_to=["oncall@example.org"]
    )
    alerter = Alerter(session_factory(migrated_engine), channels_from_settings(settings), cooldown_s=600)
    stored = alerter.raise_alert(ALERT)
    assert stored.deliveries == {
        "log": {"ok": True, "attempts": 1},
        "webhook": {"ok": True, "attempts": 1},
        "email": {"ok": True, "attempts": 1},
    }
    assert received[0]["text"] == ":rotating_light: *digits v3: critical drift*\ninput p=1e-9 on pixel_3_4"
    assert received[0]["severity"] == "critical" and received[0]["details"] == {"check_id": 7}
    mail = message_from_bytes(inbox.messages[0])
    assert mail["Subject"] == "[critical] digits v3: critical drift" and mail["To"] == "oncall@example.org"
    assert "pixel_3_4" in mail.get_payload()

    again = alerter.raise_alert(ALERT)  # same key within the cool-down: stored, not sent
    assert again.suppressed and again.deliveries == {} and len(received) == 1 and len(inbox.messages) == 1
    later = alerter.raise_alert(ALERT, now=utcnow() + timedelta(seconds=601))
    assert not later.suppressed and len(received) == 2
    assert [a.suppressed for a in alerter.recent()] == [False, True, False]


def test_a_failing_channel_is_retried_recorded_and_never_raises(migrated_engine: Engine) -> None:
    dead = AlertSettings(webhook_url=f"http://127.0.0.1:{free_port()}/nobody", smtp_host="127.0.0.1",
                         smtp_port=free_port(), smtp_to=["x@example.org"])  # fmt: skip
    alerter = Alerter(
        session_factory(migrated_engine), channels_from_settings(dead), retries=2, retry_delay_s=0.01
    )
    stored = alerter.raise_alert(ALERT)
    assert stored.deliveries["log"] == {"ok": True, "attempts": 1}
    for name in ("webhook", "email"):
        delivery = stored.deliveries[name]
        assert isinstance(delivery, dict) and delivery["ok"] is False and delivery["attempts"] == 3
        assert "Connect" in str(delivery["errors"]) or "refused" in str(delivery["errors"])
    assert alerter.recent()[0].deliveries == stored.deliveries  # the failure is recorded
