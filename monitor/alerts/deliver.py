"""Sending queued alerts: ``deliver_alerts_job(runtime)`` (scheduled every minute).

Each due ``pending`` delivery is claimed in its own transaction (attempts + 1 and ``next_attempt_at`` pushed to
the retry time, so a crash mid-send never loops quickly), sent, and its outcome recorded: ``sent`` with
``sent_at`` and ``response_status``, or ``last_error`` and a retry after ``alert_backoff_seconds * 2**(attempts-1)``
(capped at six hours); after ``alert_max_attempts`` failures the delivery is ``failed``. Sent deliveries are never
picked again, so a restart does not resend.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select

from monitor.alerts.email import send_email
from monitor.alerts.rules import parse_emails
from monitor.alerts.webhook import post_webhook
from monitor.errors import MonitorError
from monitor.storage.db import transaction
from monitor.storage.tables import AlertDelivery, AlertRule, utcnow

log = logging.getLogger(__name__)
MAX_BACKOFF = timedelta(hours=6)


@dataclass(frozen=True)
class DeliveryReport:
    sent: int = 0
    retrying: int = 0
    failed: int = 0


def backoff(settings: Any, attempts: int) -> timedelta:
    """Delay before the next attempt after ``attempts`` failures: base, 2x base, 4x base, ... (capped)."""
    delay = timedelta(seconds=settings.alert_backoff_seconds * 2 ** max(0, attempts - 1))
    return min(delay, MAX_BACKOFF)


def alert_text(settings: Any, payload: dict[str, Any]) -> tuple[str, str]:
    """(subject, plain-text body) of an alert email."""
    if payload.get("event") == "digest":
        return str(payload.get("subject", "Daily digest")), str(payload.get("text", ""))
    release = payload.get("release") or {}
    item = payload.get("item") or {}
    link = (settings.public_url.rstrip("/") + payload["path"]) if settings.public_url and payload.get("path") \
        else payload.get("path", "")
    lines = [
        f"A news claim contradicts the release \"{release.get('title', '')}\" "
        f"(confidence {float(payload.get('score', 0)):.0%}).", "",
        f"Outlet: {item.get('outlet') or 'unknown'}",
        f"Article: {item.get('title') or ''} {item.get('url') or ''}".rstrip(), "",
        f"Claim: {payload.get('claim', '')}",
        f"Release says: {payload.get('statement', '')}",
    ]
    reasons = [r for r in payload.get("reasons") or [] if r]
    if reasons:
        lines += ["", "Why:"] + [f"  - {r}" for r in reasons]
    lines += ["", f"Review it: {link}", "", "-- statement monitor (you get this because of an alert rule)"]
    subject = f"[Statement monitor] Contradiction of \"{release.get('title', '')}\" in {item.get('outlet') or 'the news'}"
    return subject[:200], "\n".join(lines)


def _send(settings: Any, delivery: AlertDelivery, secret: str | None, now: datetime) -> int | None:
    if delivery.channel == "email":
        subject, body = alert_text(settings, delivery.payload)
        send_email(settings, parse_emails(delivery.target), subject, body,
                   headers={"X-Monitor-Delivery": str(delivery.id)})
        return None
    if delivery.channel == "webhook":
        if not secret:
            raise MonitorError("the webhook rule has no signing secret")
        response = post_webhook(delivery.target, delivery.payload, secret, timestamp=int(now.timestamp()),
                                delivery_id=delivery.id, timeout=settings.webhook_timeout,
                                allow_hosts=settings.fetch_allow_hosts, user_agent=settings.user_agent)
        return response.status
    raise MonitorError(f"unknown channel {delivery.channel!r}")


def deliver_pending(runtime: Any, now: datetime | None = None, *, limit: int = 100) -> DeliveryReport:
    """Send the due pending deliveries (see the module docstring)."""
    settings = runtime.settings
    now = now or utcnow()
    with runtime.factory() as session:
        due = list(session.scalars(
            select(AlertDelivery.id).where(AlertDelivery.status == "pending",
                                           or_(AlertDelivery.next_attempt_at.is_(None),
                                               AlertDelivery.next_attempt_at <= now))
            .order_by(AlertDelivery.next_attempt_at, AlertDelivery.id).limit(limit)))
    sent = retrying = failed = 0
    for delivery_id in due:
        with transaction(runtime.factory) as session:  # claim it
            query = select(AlertDelivery).where(AlertDelivery.id == delivery_id)
            if session.bind is not None and session.bind.dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            delivery = session.scalar(query)
            if delivery is None or delivery.status != "pending" or (
                    delivery.next_attempt_at is not None and delivery.next_attempt_at > now):
                continue  # taken by another worker meanwhile
            delivery.attempts += 1
            delivery.next_attempt_at = now + backoff(settings, delivery.attempts)
            rule = session.get(AlertRule, delivery.rule_id)
            secret = rule.secret if rule else None
            session.flush()
            session.expunge(delivery)
        status: int | None = None
        error: str | None = None
        try:
            status = _send(settings, delivery, secret, now)
        except MonitorError as exc:
            error = str(exc)
            status = getattr(exc, "status", None)
        except Exception as exc:  # noqa: BLE001 - any failure of one delivery is recorded, never fatal
            error = f"{type(exc).__name__}: {exc}"
        with transaction(runtime.factory) as session:
            row = session.get(AlertDelivery, delivery_id)
            if row is None:
                continue
            row.response_status = status
            if error is None:
                row.status, row.sent_at, row.last_error, row.next_attempt_at = "sent", now, None, None
                sent += 1
                log.info("alert %d sent by %s to %s", row.id, row.channel, row.target)
            else:
                row.last_error = error[:2000]
                if row.attempts >= settings.alert_max_attempts:
                    row.status, row.next_attempt_at = "failed", None
                    failed += 1
                    log.warning("alert %d failed after %d attempts: %s", row.id, row.attempts, error)
                else:
                    retrying += 1
                    log.info("alert %d attempt %d failed (%s); retry at %s", row.id, row.attempts, error,
                             row.next_attempt_at)
    return DeliveryReport(sent, retrying, failed)


def deliver_alerts_job(runtime: Any) -> DeliveryReport:
    """Scheduled job (every minute): send due alerts; never raises."""
    try:
        return deliver_pending(runtime)
    except Exception:  # noqa: BLE001
        log.exception("alert delivery round failed")
        return DeliveryReport()
