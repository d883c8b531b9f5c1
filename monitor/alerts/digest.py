"""The daily digest email: one per active user with ``daily_digest`` on and an email address.

``daily_digest_job(runtime)`` (scheduled daily at ``settings.digest_hour`` UTC) lists the flags of the last 24
hours and the size of the open queue. Each digest is an ``AlertDelivery`` of the disabled system rule
"Daily digest (system)" with the dedup key ``digest:<user id>:<date>``, so it is sent (and retried) like any
alert, shows in the delivery log, and is never sent twice for one day, even after a restart. No email is sent
on a day with no new flag and an empty queue.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from monitor.alerts.rules import DIGEST_RULE_NAME
from monitor.storage.db import transaction
from monitor.storage.tables import AlertDelivery, AlertRule, Claim, Feed, Item, Match, Release, User, utcnow

log = logging.getLogger(__name__)


def digest_rule(session: Session) -> AlertRule:
    rule = session.scalar(select(AlertRule).where(AlertRule.name == DIGEST_RULE_NAME))
    if rule is None:
        rule = AlertRule(name=DIGEST_RULE_NAME, channel="email", target="(each user's address)", enabled=False,
                         min_score=0.0, window_minutes=24 * 60, max_per_hour=1000)
        session.add(rule)
        session.flush()
    return rule


def digest_text(session: Session, now: datetime, public_url: str | None) -> tuple[str, str] | None:
    """(subject, body) of today's digest, or None when there is nothing to say."""
    since = now - timedelta(hours=24)
    flags = list(session.execute(
        select(Match.id, Match.score, Match.status, Claim.text, Release.title, Feed.name)
        .join(Claim, Claim.id == Match.claim_id).join(Item, Item.id == Claim.item_id)
        .join(Feed, Feed.id == Item.feed_id).join(Release, Release.id == Match.release_id)
        .where(Match.label == "contradicts", Match.status != "withdrawn", Match.created_at >= since)
        .order_by(Match.score.desc(), Match.id)))
    open_count = session.scalar(select(func.count(Match.id)).where(Match.label == "contradicts",
                                                                  Match.status == "new")) or 0
    if not flags and not open_count:
        return None
    base = public_url.rstrip("/") if public_url else ""
    lines = [f"Statement monitor, {now:%Y-%m-%d}: {len(flags)} new contradiction flag(s) in the last 24 hours; "
             f"{open_count} flag(s) wait for review.", ""]
    for match_id, score, status, claim, release, outlet in flags[:25]:
        lines.append(f"- [{status}] {score:.0%} {outlet}: {claim}")
        lines.append(f"    contradicts \"{release}\" — {base}/matches/{match_id}")
    if len(flags) > 25:
        lines.append(f"... and {len(flags) - 25} more: {base}/")
    lines += ["", "You get this digest because it is switched on for your account."]
    return f"[Statement monitor] Daily digest {now:%Y-%m-%d}: {len(flags)} new flag(s)", "\n".join(lines)


def queue_digests(runtime: Any, now: datetime | None = None) -> int:
    """Queue today's digest for each subscribed user (once per user and day); returns how many were queued."""
    now = now or utcnow()
    queued = 0
    with transaction(runtime.factory) as session:
        users = list(session.scalars(select(User).where(User.active.is_(True), User.daily_digest.is_(True),
                                                        User.email.is_not(None)).order_by(User.id)))
        if not users:
            return 0
        text = digest_text(session, now, runtime.settings.public_url)
        if text is None:
            return 0
        rule = digest_rule(session)
        for user in users:
            key = f"digest:{user.id}:{now:%Y-%m-%d}"
            if session.scalar(select(AlertDelivery.id).where(AlertDelivery.rule_id == rule.id,
                                                             AlertDelivery.dedup_key == key)) is not None:
                continue
            delivery = AlertDelivery(rule_id=rule.id, dedup_key=key, channel="email", target=user.email,
                                     payload={"event": "digest", "subject": text[0], "text": text[1],
                                              "user_id": user.id},
                                     status="pending", attempts=0, next_attempt_at=now, created_at=now)
            try:
                with session.begin_nested():
                    session.add(delivery)
                    session.flush()
            except IntegrityError:
                continue
            queued += 1
    return queued


def daily_digest_job(runtime: Any, now: datetime | None = None) -> int:
    """Scheduled job (daily at ``settings.digest_hour`` UTC): queue and send the digests; never raises."""
    from monitor.alerts.deliver import deliver_pending

    try:
        queued = queue_digests(runtime, now)
        if queued:
            deliver_pending(runtime, now)
        return queued
    except Exception:  # noqa: BLE001
        log.exception("daily digest failed")
        return 0
