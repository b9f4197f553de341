"""Alert channels beyond the log: a generic webhook (Slack-compatible JSON) and email over SMTP.
Each raises on failure; the alerter retries, records the outcome and never lets it escape."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage

import httpx
from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from lifecycle.alerts import Alert, Channel, LogChannel
from lifecycle.names import Severity

EMOJI = {
    Severity.INFO: ":information_source:",
    Severity.WARNING: ":warning:",
    Severity.CRITICAL: ":rotating_light:",
}


class AlertSettings(BaseSettings):
    """Where alerts go besides the log and the database: a chat webhook and / or email."""

    model_config = SettingsConfigDict(env_prefix="LIFECYCLE_ALERT_", extra="forbid")

    webhook_url: str | None = None
    """POST each alert as Slack-compatible JSON (``text`` plus ``blocks``) to this URL."""
    webhook_timeout_s: float = 5.0
    """HTTP timeout of one webhook delivery."""
    smtp_host: str | None = None
    """Send each alert as an email through this SMTP server."""
    smtp_port: int = 25
    """Port of the SMTP server."""
    smtp_from: str = "lifecycle@localhost"
    """Sender address of alert emails."""
    smtp_to: list[str] = []
    """Recipients of alert emails (a JSON list in the environment, e.g. ``["ops@example.com"]``)."""
    smtp_starttls: bool = False
    """Upgrade the SMTP connection with STARTTLS before logging in."""
    smtp_user: str | None = None
    """SMTP login; unset: no login."""
    smtp_password: SecretStr | None = None
    """SMTP password (never logged)."""
    smtp_timeout_s: float = 10.0
    """Timeout of one SMTP delivery."""


class WebhookChannel:
    name = "webhook"

    def __init__(self, url: str, timeout_s: float = 5.0) -> None:
        self.url = url
        self.timeout_s = timeout_s

    def send(self, alert: Alert) -> None:
        text = f"{EMOJI[alert.severity]} *{alert.title}*\n{alert.message}"
        payload = {
            "text": text,
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}],
            "severity": alert.severity.value,
            "source": alert.source,
            "key": alert.key,
            "details": alert.details,
        }
        response = httpx.post(self.url, json=payload, timeout=self.timeout_s)
        response.raise_for_status()


class SmtpChannel:
    name = "email"

    def __init__(self, settings: AlertSettings) -> None:
        if not settings.smtp_host or not settings.smtp_to:
            raise ValueError("email alerts need LIFECYCLE_ALERT_SMTP_HOST and LIFECYCLE_ALERT_SMTP_TO")
        self.settings = settings

    def send(self, alert: Alert) -> None:
        s = self.settings
        message = EmailMessage()
        message["Subject"] = f"[{alert.severity.value}] {alert.title}"
        message["From"] = s.smtp_from
        message["To"] = ", ".join(s.smtp_to)
        details = "\n".join(f"{k}: {v}" for k, v in alert.details.items())
        message.set_content(f"{alert.message}\n\nsource: {alert.source}\nkey: {alert.key}\n{details}\n")
        assert s.smtp_host is not None
        with smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=s.smtp_timeout_s) as smtp:
            if s.smtp_starttls:
                smtp.starttls()
            if s.smtp_user and s.smtp_password:
                smtp.login(s.smtp_user, s.smtp_password.get_secret_value())
            smtp.send_message(message)


def channels_from_settings(settings: AlertSettings) -> list[Channel]:
    """The log channel always; webhook and email when configured."""
    channels: list[Channel] = [LogChannel()]
    if settings.webhook_url:
        channels.append(WebhookChannel(settings.webhook_url, settings.webhook_timeout_s))
    if settings.smtp_host:
        channels.append(SmtpChannel(settings))
    return channels
