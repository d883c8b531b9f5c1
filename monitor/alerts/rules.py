"""Alert rules and the queue of deliveries they produce.

``queue_alerts(session, matches)`` runs after new flags are stored. For every enabled rule a flag satisfies
(release watched, score >= ``min_score``, outlet watched) it adds one ``AlertDelivery``, with three guards
against alert storms:

* **one alert per story**: the dedup key is the story (the item's ``story_key``, else its ``url_key``, else its
  id) plus the release, so several outlets carrying one story, or several claims of one article, give one alert
  per rule within ``window_minutes``. The stored key also carries the window's time bucket, and the unique
  constraint (rule_id, dedup_key) makes a second insert of the same alert impossible (restarts never resend);
* **rate limit**: beyond ``max_per_hour`` alerts queued for a rule in the last hour, deliveries are stored with
  status ``suppressed`` (counted in the log, never sent);
* deliveries are sent later by ``monitor.alerts.deliver`` (retries with backoff).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from monitor.errors import MonitorError, NotFoundError
from monitor.storage.tables import (
    AlertDelivery,
    AlertRule,
    Claim,
    Feed,
    Item,
    Match,
    Release,
    Sighting,
    Statement,
    utcnow,
)

CHANNELS = ("email", "webhook")
DIGEST_RULE_NAME = "Daily digest (system)"  # holds digest deliveries; disabled, so it never matches flags
_EMAIL_RE = re.compile(r"^[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>]+$")


def parse_emails(target: str) -> list[str]:
    addresses = [part.strip() for part in re.split(r"[,;\s]+", target or "") if part.strip()]
    if not addresses:
        raise MonitorError("enter at least one email address")
    for address in addresses:
        if not _EMAIL_RE.match(address):
            raise MonitorError(f"{address!r} is not an email address")
    return addresses


def check_webhook_url(url: str, allow_hosts: list[str] | tuple[str, ...] = ()) -> str:
    """The URL if the feed fetcher's SSRF guard accepts it (http/https, public address or allow-listed)."""
    from monitor.collectors.guard import AddressGuard

    url = (url or "").strip()
    AddressGuard(list(allow_hosts)).check_url(url)
    return url


def normalise_target(channel: str, target: str, allow_hosts: list[str] | tuple[str, ...] = ()) -> str:
    if channel not in CHANNELS:
        raise MonitorError(f"unknown channel {channel!r}; choose email or webhook")
    if channel == "email":
        return ", ".join(parse_emails(target))
    return check_webhook_url(target, allow_hosts)


def create_rule(session: Session, *, name: str, channel: str, target: str, allow_hosts: list[str] | tuple[str, ...] = (),
                release_ids: list[int] | None = None, feed_ids: list[int] | None = None, min_score: float = 0.8,
                window_minutes: int = 24 * 60, max_per_hour: int = 20, created_by_id: int | None = None,
                secret: str | None = None, enabled: bool = True) -> AlertRule:
    name = (name or "").strip()
    if not name:
        raise MonitorError("a rule needs a name")
    _check_numbers(min_score, window_minutes, max_per_hour)
    rule = AlertRule(name=name[:200], channel=channel, target=normalise_target(channel, target, allow_hosts),
                     release_ids=sorted(set(release_ids)) if release_ids else None,
                     feed_ids=sorted(set(feed_ids)) if feed_ids else None, min_score=float(min_score),
                     window_minutes=int(window_minutes), max_per_hour=int(max_per_hour), enabled=enabled,
                     created_by_id=created_by_id,
                     secret=(secret or secrets.token_urlsafe(32)) if channel == "webhook" else None)
    session.add(rule)
    session.flush()
    return rule


def update_rule(session: Session, rule: AlertRule, *, allow_hosts: list[str] | tuple[str, ...] = (),
                **changes: Any) -> AlertRule:
    channel = changes.get("channel", rule.channel)
    if "target" in changes or "channel" in changes:
        rule.target = normalise_target(channel, changes.get("target", rule.target), allow_hosts)
        rule.channel = channel
        if channel == "webhook" and not rule.secret:
            rule.secret = secrets.token_urlsafe(32)
    _check_numbers(changes.get("min_score", rule.min_score), changes.get("window_minutes", rule.window_minutes),
                   changes.get("max_per_hour", rule.max_per_hour))
    for key in ("name", "min_score", "window_minutes", "max_per_hour", "enabled"):
        if key in changes:
            setattr(rule, key, changes[key])
    for key in ("release_ids", "feed_ids"):
        if key in changes:
            setattr(rule, key, sorted(set(changes[key])) if changes[key] else None)
    session.flush()
    return rule


def _check_numbers(min_score: float, window_minutes: int, max_per_hour: int) -> None:
    if not 0.0 <= float(min_score) <= 1.0:
        raise MonitorError("the minimum confidence must be between 0 and 1")
    if int(window_minutes) < 1:
        raise MonitorError("the window must be at least one minute")
    if int(max_per_hour) < 1:
        raise MonitorError("the rate limit must allow at least one alert per hour")


def list_rules(session: Session) -> list[AlertRule]:
    return list(session.scalars(select(AlertRule).where(AlertRule.name != DIGEST_RULE_NAME).order_by(AlertRule.id)))


def get_rule(session: Session, rule_id: int) -> AlertRule:
    rule = session.get(AlertRule, rule_id)
    if rule is None or rule.name == DIGEST_RULE_NAME:
        raise NotFoundError(f"alert rule {rule_id} does not exist")
    return rule


def delete_rule(session: Session, rule_id: int) -> AlertRule:
    rule = get_rule(session, rule_id)
    session.delete(rule)
    session.flush()
    return rule


def rule_to_dict(rule: AlertRule, *, with_secret: bool = False) -> dict[str, Any]:
    data = {"id": rule.id, "name": rule.name, "channel": rule.channel, "target": rule.target,
            "release_ids": rule.release_ids, "feed_ids": rule.feed_ids, "min_score": rule.min_score,
            "window_minutes": rule.window_minutes, "max_per_hour": rule.max_per_hour, "enabled": rule.enabled,
            "created_at": rule.created_at.isoformat() if rule.created_at else None}
    if with_secret:
        data["secret"] = rule.secret
    return data


def delivery_to_dict(d: AlertDelivery) -> dict[str, Any]:
    def iso(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    return {"id": d.id, "rule_id": d.rule_id, "match_id": d.match_id, "channel": d.channel, "target": d.target,
            "status": d.status, "attempts": d.attempts, "last_error": d.last_error,
            "response_status": d.response_status, "next_attempt_at": iso(d.next_attempt_at),
            "created_at": iso(d.created_at), "sent_at": iso(d.sent_at), "dedup_key": d.dedup_key}


def list_deliveries(session: Session, *, limit: int = 200, rule_id: int | None = None,
                    status: str | None = None) -> list[AlertDelivery]:
    query = select(AlertDelivery).order_by(AlertDelivery.id.desc()).limit(limit)
    if rule_id is not None:
        query = query.where(AlertDelivery.rule_id == rule_id)
    if status:
        query = query.where(AlertDelivery.status == status)
    return list(session.scalars(query))


# -- queueing -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueueResult:
    queued: int = 0
    suppressed: int = 0
    duplicates: int = 0


def story_of(item: Item) -> str:
    """What makes two items one story: the normalised title+text hash, else the canonical URL key, else the id."""
    if item.story_key:
        return f"story:{item.story_key}"
    if item.url_key:
        return f"url:{item.url_key}"
    return f"item:{item.id}"


def dedup_base(item: Item, release_id: int) -> str:
    return hashlib.sha256(f"{story_of(item)}|release:{release_id}".encode()).hexdigest()[:40]


def match_payload(match: Match, item: Item, feed: Feed | None, statement: Statement, release: Release,
                  claim: Claim) -> dict[str, Any]:
    return {
        "event": "contradiction.flagged",
        "match_id": match.id, "label": match.label, "score": round(float(match.score), 4),
        "model_version": match.model_version,
        "claim": claim.text, "statement": statement.text,
        "reasons": [r.get("text") for r in (match.reasons or []) if isinstance(r, dict)],
        "release": {"id": release.id, "title": release.title, "url": release.url},
        "item": {"id": item.id, "title": item.title, "url": item.url,
                 "outlet": feed.name if feed else None,
                 "published_at": item.published_at.isoformat() if item.published_at else None},
        "path": f"/matches/{match.id}",
    }


def _rule_matches(rule: AlertRule, match: Match, feed_ids: set[int]) -> bool:
    if float(match.score) < float(rule.min_score):
        return False
    if rule.release_ids and match.release_id not in set(rule.release_ids):
        return False
    if rule.feed_ids and not (feed_ids & set(rule.feed_ids)):
        return False
    return True


def queue_alerts(session: Session, matches: list[Match], now: datetime | None = None) -> QueueResult:
    """Queue the alerts of new flags (see the module docstring); returns what was queued and held back."""
    now = now or utcnow()
    flags = [m for m in matches if m.label == "contradicts" and m.status == "new"]
    if not flags:
        return QueueResult()
    rules = list(session.scalars(select(AlertRule).where(AlertRule.enabled.is_(True),
                                                         AlertRule.name != DIGEST_RULE_NAME)
                                 .order_by(AlertRule.id)))
    if not rules:
        return QueueResult()
    session.flush()
    queued = suppressed = duplicates = 0
    for match in flags:
        claim = session.get(Claim, match.claim_id)
        item = session.get(Item, claim.item_id) if claim else None
        statement = session.get(Statement, match.statement_id)
        release = session.get(Release, match.release_id)
        if claim is None or item is None or statement is None or release is None:
            continue
        feed_ids = {item.feed_id} | set(session.scalars(select(Sighting.feed_id).where(Sighting.item_id == item.id)))
        base = dedup_base(item, match.release_id)
        payload: dict[str, Any] | None = None
        for rule in rules:
            if not _rule_matches(rule, match, feed_ids):
                continue
            window = timedelta(minutes=int(rule.window_minutes))
            seen = session.scalar(select(AlertDelivery.id).where(
                AlertDelivery.rule_id == rule.id, AlertDelivery.dedup_key.like(f"{base}:%"),
                AlertDelivery.created_at >= now - window).limit(1))
            if seen is not None:
                duplicates += 1
                continue
            recent = session.scalar(select(func.count(AlertDelivery.id)).where(
                AlertDelivery.rule_id == rule.id, AlertDelivery.status != "suppressed",
                AlertDelivery.created_at >= now - timedelta(hours=1))) or 0
            status = "suppressed" if recent >= int(rule.max_per_hour) else "pending"
            bucket = int(now.timestamp() // (int(rule.window_minutes) * 60))
            if payload is None:
                payload = match_payload(match, item, session.get(Feed, item.feed_id), statement, release, claim)
            delivery = AlertDelivery(rule_id=rule.id, match_id=match.id, dedup_key=f"{base}:{bucket}",
                                     channel=rule.channel, target=rule.target, payload=payload, status=status,
                                     attempts=0, next_attempt_at=now if status == "pending" else None,
                                     created_at=now,
                                     last_error=(f"rate limit: more than {rule.max_per_hour} alerts in an hour"
                                                 if status == "suppressed" else None))
            try:
                with session.begin_nested():
                    session.add(delivery)
                    session.flush()
            except IntegrityError:  # the same alert was queued already (another process, a restart)
                duplicates += 1
                continue
            if status == "suppressed":
                suppressed += 1
            else:
                queued += 1
    return QueueResult(queued, suppressed, duplicates)
