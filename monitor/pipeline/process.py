"""``process_new_items``: claims of unchecked items -> candidate statements -> classify -> matches."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, is_dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from models.claims import extract_claims
from monitor.storage.db import transaction
from monitor.storage.tables import Claim, Feed, Item, Match, Release, Statement, utcnow

log = logging.getLogger(__name__)
RELATED = ("contradicts", "supports", "discusses")


class Checker(Protocol):
    """What the pipeline needs of a classifier (``models.StanceModel`` provides it)."""

    version: str

    def check(self, claims: list[str], statements: list[str], top_k: int = 3) -> list[list[Any]]: ...


@dataclass(frozen=True)
class CheckResult:
    items: int = 0
    claims: int = 0
    matches: int = 0
    flagged: int = 0


#: Reason kinds that name concrete evidence (a span in both texts), as opposed to a vague wording signal.
EVIDENCE_KINDS = frozenset({"figure", "date", "entity", "denial", "negation", "percent", "money"})


def has_evidence(reasons: list[Any]) -> bool:
    """Whether any reason points at concrete evidence (a figure, date, name, denial or negation)."""
    return any((r.get("kind") if isinstance(r, dict) else r.kind) in EVIDENCE_KINDS for r in reasons)


def decide_label(label: str, score: float, probabilities: dict[str, float], threshold: float, *,
                 evidence: bool = True, unexplained_threshold: float = 0.0) -> tuple[str, float]:
    """Apply the flag threshold: a contradiction below it falls back to the most likely other label.

    A contradiction without concrete evidence (only a wording signal) must clear ``unexplained_threshold``
    too: staff trust a flag when it can say which figure, date, name or denial conflicts.
    """
    if not evidence:
        threshold = max(threshold, unexplained_threshold)
    if label != "contradicts" or score >= threshold:
        return label, score
    others = {k: v for k, v in probabilities.items() if k != "contradicts"}
    if not others:
        return "unrelated", 0.0
    best = max(others, key=others.__getitem__)
    return best, others[best]


def uncertainty(probabilities: dict[str, float]) -> float | None:
    """1 - (p1 - p2) of the two likeliest labels: 0 when the model is sure, 1 when it cannot choose."""
    values = sorted((float(v) for v in probabilities.values()), reverse=True)
    if not values:
        return None
    second = values[1] if len(values) > 1 else 0.0
    return round(1.0 - (values[0] - second), 6)


def _reason_dict(reason: Any) -> dict[str, Any]:
    data = asdict(reason) if is_dataclass(reason) else dict(reason)
    for key in ("claim_span", "statement_span"):
        if data.get(key) is not None:
            data[key] = [int(data[key][0]), int(data[key][1])]
    return data


def _active_statements(session: Session) -> list[Statement]:
    query = (select(Statement).join(Statement.release).where(Release.retired.is_(False))
             .order_by(Statement.release_id, Statement.position))
    return list(session.scalars(query))


def _sync_claims(session: Session, item: Item) -> list[Claim]:
    """The item's claims as stored rows; unchanged claims keep their ids (and their reviewed matches)."""
    spans = extract_claims(item.title or "", item.body_text or "")
    existing = {(c.source, c.text): c for c in item.claims}
    wanted: list[Claim] = []
    for position, span in enumerate(spans):
        claim = existing.pop((span.source, span.text), None)
        if claim is None:
            claim = Claim(item_id=item.id, source=span.source, text=span.text, start=span.start, end=span.end,
                          position=position)
            session.add(claim)
        else:
            claim.position, claim.start, claim.end = position, span.start, span.end
        wanted.append(claim)
    for stale in existing.values():
        reviewed = session.scalar(select(Match.id).where(Match.claim_id == stale.id, Match.status != "new"))
        if reviewed is None:
            session.delete(stale)
    session.flush()
    return wanted


def process_new_items(factory: sessionmaker[Session], model: Checker, *, top_k: int = 3, threshold: float = 0.5,
                      unexplained_threshold: float = 0.8, batch_size: int = 200,
                      now: datetime | None = None) -> CheckResult:
    """Check every news item not yet checked, in batches that are each one transaction."""
    totals = CheckResult()
    while True:
        with transaction(factory) as session:
            items = list(session.scalars(
                select(Item).join(Item.feed).where(Item.checked_at.is_(None), Feed.kind == "news")
                .order_by(Item.id).limit(batch_size)))
            if not items:
                return totals
            result = _check_batch(session, model, items, top_k, threshold, unexplained_threshold,
                                  now or utcnow())
        totals = CheckResult(totals.items + result.items, totals.claims + result.claims,
                             totals.matches + result.matches, totals.flagged + result.flagged)


def _check_batch(session: Session, model: Checker, items: list[Item], top_k: int, threshold: float,
                 unexplained_threshold: float, now: datetime) -> CheckResult:
    statements = _active_statements(session)
    claims = [claim for item in items for claim in _sync_claims(session, item)]
    n_matches = n_flagged = 0
    new_flags: list[Match] = []
    if statements and claims:
        judged = model.check([c.text for c in claims], [s.text for s in statements], top_k=top_k)
        for claim, judgements in zip(claims, judged, strict=True):
            for judgement in judgements:
                statement = statements[judgement.statement_index]
                probabilities = {k: float(v) for k, v in judgement.probabilities.items()}
                label, score = decide_label(judgement.label, float(judgement.score), probabilities, threshold,
                                            evidence=has_evidence(judgement.reasons),
                                            unexplained_threshold=unexplained_threshold)
                if label not in RELATED:
                    continue
                match = session.scalar(select(Match).where(Match.claim_id == claim.id,
                                                           Match.statement_id == statement.id))
                if match is not None and match.status != "new":
                    continue  # a reviewed judgement is never overwritten
                was_flag = match is not None and match.label == "contradicts"
                if match is None:
                    match = Match(claim_id=claim.id, statement_id=statement.id, release_id=statement.release_id,
                                  status="new", created_at=now)
                    session.add(match)
                match.label, match.score, match.probabilities = label, score, probabilities
                match.uncertainty = uncertainty(probabilities)
                if label == "contradicts" and not was_flag:
                    new_flags.append(match)
                match.reasons = [_reason_dict(r) for r in judgement.reasons]
                match.model_version = model.version
                n_matches += 1
                n_flagged += label == "contradicts"
    for item in items:
        item.checked_at = now
    session.flush()
    if new_flags:
        from monitor.alerts.rules import queue_alerts

        queue_alerts(session, new_flags, now=now)
    log.info("checked %d items, %d claims: %d matches, %d flagged", len(items), len(claims), n_matches, n_flagged)
    return CheckResult(len(items), len(claims), n_matches, n_flagged)
