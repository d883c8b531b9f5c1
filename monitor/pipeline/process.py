"""``process_new_items``: claims of unchecked items -> candidate statements -> classify -> matches."""

from __future__ import annotations

import hashlib
import logging
import threading
from dataclasses import asdict, dataclass, is_dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from models.claims import extract_claims
from monitor.storage.db import transaction
from monitor.storage.tables import Claim, Feed, Item, Match, Release, Statement, utcnow

log = logging.getLogger(__name__)
RELATED = ("contradicts", "supports", "discusses")


class Checker(Protocol):
    """What the pipeline needs of a classifier (``models.StanceModel`` provides it)."""

    version: str

    def check(self, claims: list[str], statements: Any, top_k: int = 3) -> list[list[Any]]:
        """``statements``: the texts, or what the checker's optional ``index(texts, key=...)`` built from them."""
        ...


@dataclass(frozen=True)
class CheckResult:
    items: int = 0
    claims: int = 0
    matches: int = 0
    flagged: int = 0


#: Reason kinds that name concrete evidence (a span in both texts), as opposed to a vague wording signal.
EVIDENCE_KINDS = frozenset({"figure", "date", "entity", "denial", "negation", "percent", "money", "reversal"})


def has_evidence(reasons: list[Any]) -> bool:
    """Whether any reason points at concrete evidence (a figure, date, name, denial, negation or reversal)."""
    return any((r.get("kind") if isinstance(r, dict) else r.kind) in EVIDENCE_KINDS for r in reasons)


def decide_label(label: str, score: float, probabilities: dict[str, float], threshold: float, *,
                 evidence: bool = True, unexplained_threshold: float = 0.0, relevance: float | None = None,
                 min_relevance: float = 0.0) -> tuple[str, float]:
    """Apply the flag threshold: a contradiction below it falls back to the most likely other label.

    A contradiction without concrete evidence (only a wording signal) must clear ``unexplained_threshold``
    too: staff trust a flag when it can say which figure, date, name or denial conflicts. A claim can only
    contradict a statement it talks about: below ``min_relevance`` (the retrieval cosine) it is no flag, however
    sure the classifier is (a denial matched to a release's dateline, say).
    """
    if not evidence:
        threshold = max(threshold, unexplained_threshold)
    off_topic = relevance is not None and relevance < min_relevance
    if label != "contradicts" or (score >= threshold and not off_topic):
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


@dataclass(frozen=True)
class ActiveStatements:
    """The active statements as plain values (ids, release ids, texts; no ORM objects) and what a checker needs
    for them: a :class:`models.index.StatementIndex` when the checker can build one, else the texts."""

    fingerprint: tuple[Any, ...]
    ids: list[int]
    release_ids: list[int]
    target: Any  # StatementIndex or list[str]


_cache_lock = threading.Lock()
_cache: ActiveStatements | None = None


def statements_fingerprint(session: Session) -> tuple[Any, ...]:
    """Cheap identity of the active statement set: a hash of the active releases' ids, and the statements'
    count, largest id and total text length. Adding a release (new ids), retiring or reactivating one (the id
    hash), deleting statements (count) or editing their text (length) changes it."""
    release_ids = session.scalars(select(Release.id).where(Release.retired.is_(False)).order_by(Release.id))
    digest = hashlib.blake2b(digest_size=16)
    for rid in release_ids:
        digest.update(rid.to_bytes(8, "little", signed=True))
    count, max_id, length = session.execute(
        select(func.count(Statement.id), func.max(Statement.id), func.sum(func.length(Statement.text)))
        .join(Statement.release).where(Release.retired.is_(False))).one()
    return digest.hexdigest(), int(count or 0), int(max_id or 0), int(length or 0)


def _checker_key(model: Any) -> tuple[Any, ...]:
    return (id(model), str(getattr(model, "version", "")))


def active_statements(session: Session, model: Any) -> ActiveStatements:
    """The active statements, loaded and indexed once and kept between batches and runs (per process) until
    the statement set (:func:`statements_fingerprint`) or the checker (object or version) changes."""
    global _cache
    fingerprint = (_checker_key(model), statements_fingerprint(session))
    with _cache_lock:  # the scheduler and the dashboard's retrain thread may both process items
        if _cache is not None and _cache.fingerprint == fingerprint:
            return _cache
        _cache = None  # free the old index before building the new one
        rows = session.execute(
            select(Statement.id, Statement.release_id, Statement.text).join(Statement.release)
            .where(Release.retired.is_(False)).order_by(Statement.release_id, Statement.position))
        ids: list[int] = []
        release_ids: list[int] = []
        texts: list[str] = []
        for sid, rid, text in rows:
            ids.append(sid)
            release_ids.append(rid)
            texts.append(text)
        target: Any = texts
        build = getattr(model, "index", None)
        if texts and callable(build):
            target = build(texts, key=fingerprint)
        _cache = ActiveStatements(fingerprint, ids, release_ids, target)
        log.info("indexed %d active statements", len(ids))
        return _cache


def clear_statement_cache() -> None:
    """Forget the cached statement index (the next batch reloads it)."""
    global _cache
    with _cache_lock:
        _cache = None


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
                      unexplained_threshold: float = 0.8, min_relevance: float = 0.0, batch_size: int = 200,
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
            result = _check_batch(session, model, items, top_k, threshold, unexplained_threshold, min_relevance,
                                  now or utcnow())
        totals = CheckResult(totals.items + result.items, totals.claims + result.claims,
                             totals.matches + result.matches, totals.flagged + result.flagged)


def _check_batch(session: Session, model: Checker, items: list[Item], top_k: int, threshold: float,
                 unexplained_threshold: float, min_relevance: float, now: datetime) -> CheckResult:
    claims = [claim for item in items for claim in _sync_claims(session, item)]
    n_matches = n_flagged = 0
    new_flags: list[Match] = []
    statements = active_statements(session, model) if claims else None
    if statements is not None and statements.ids and claims:
        judged = model.check([c.text for c in claims], statements.target, top_k=top_k)
        for claim, judgements in zip(claims, judged, strict=True):
            for judgement in judgements:
                statement_id = statements.ids[judgement.statement_index]
                release_id = statements.release_ids[judgement.statement_index]
                probabilities = {k: float(v) for k, v in judgement.probabilities.items()}
                label, score = decide_label(judgement.label, float(judgement.score), probabilities, threshold,
                                            evidence=has_evidence(judgement.reasons),
                                            unexplained_threshold=unexplained_threshold,
                                            relevance=getattr(judgement, "relevance", None),
                                            min_relevance=min_relevance)
                if label not in RELATED:
                    continue
                match = session.scalar(select(Match).where(Match.claim_id == claim.id,
                                                           Match.statement_id == statement_id))
                if match is not None and match.status != "new":
                    continue  # a reviewed judgement is never overwritten
                was_flag = match is not None and match.label == "contradicts"
                if match is None:
                    match = Match(claim_id=claim.id, statement_id=statement_id, release_id=release_id,
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
