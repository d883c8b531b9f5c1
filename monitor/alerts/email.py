"""Alert and digest emails over SMTP (stdlib ``smtplib``): STARTTLS when configured, credentials from settings."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

from monitor.errors import MonitorError


def build_message(settings: Any, to: list[str], subject: str, body: str,
                  headers: dict[str, str] | None = None) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = settings.smtp_from
    msg["To"] = ", ".join(to)
    msg["Subject"] = subject
    msg["Date"] = formatdate(localtime=False, usegmt=True)
    msg["Message-ID"] = make_msgid(domain=settings.smtp_from.rpartition("@")[2] or "localhost")
    for key, value in (headers or {}).items():
        msg[key] = value
    msg.set_content(body)
    return msg


def send_email(settings: Any, to: list[str], subject: str, body: str,
               headers: dict[str, str] | None = None) -> None:
    """Send one message; raises MonitorError with a staff-readable reason on any failure."""
    if not settings.smtp_host:
        raise MonitorError("no SMTP server configured (set MONITOR_SMTP_HOST)")
    msg = build_message(settings, to, subject, body, headers)
    try:
        with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=settings.smtp_timeout) as smtp:
            smtp.ehlo()
            if settings.smtp_starttls:
                smtp.starttls()
                smtp.ehlo()
            if settings.smtp_user:
                smtp.login(settings.smtp_user, settings.smtp_password or "")
            smtp.send_message(msg)
    except (smtplib.SMTPException, OSError) as exc:
        raise MonitorError(f"email to {', '.join(to)} failed: {type(exc).__name__}: {exc}") from exc
