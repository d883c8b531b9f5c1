"""Read-side queries shared by the CLI and the dashboard (review queue, match details)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session, joinedload

from monitor.storage.tables import Claim, Item, Match, Statement


@dataclass(frozen=True)
class MatchFilter:
    """Filters of the review queue; ``None`` means "any"."""

    status: str | None = None
    label: str | None = None
    release_id: int | None = None
    feed_id: int | None = None
    min_score: float | None = None


def _apply(query: Select[Any], flt: MatchFilter) -> Select[Any]:
    if flt.status:
        query = query.where(Match.status == flt.status)
    if flt.label:
        query = query.where(Match.label == flt.label)
    if flt.release_id:
        query = query.where(Match.release_id == flt.release_id)
    if flt.min_score is not None:
        query = query.where(Match.score >= flt.min_score)
    if flt.feed_id:
        query = query.join(Match.claim).join(Claim.item).where(Item.feed_id == flt.feed_id)
    return query


def list_matches(session: Session, flt: MatchFilter = MatchFilter(), *, limit: int | None = None,
                 before: tuple[float, int] | None = None) -> list[Match]:
    """Matches, most confident first then newest; ``before`` = (score, id) of the last row seen (keyset)."""
    query = _apply(select(Match), flt).options(
        joinedload(Match.claim).joinedload(Claim.item).joinedload(Item.feed),
        joinedload(Match.statement).joinedload(Statement.release),
    ).order_by(Match.score.desc(), Match.id.desc())
    if before is not None:
        score, match_id = before
        query = query.where((Match.score < score) | ((Match.score == score) & (Match.id < match_id)))
    if limit:
        query = query.limit(limit)
    return list(session.scalars(query).unique())


def match_to_dict(match: Match) -> dict[str, Any]:
    """The JSON shape of a match used by ``monitor matches list --json`` and the API."""
    item = match.claim.item
    return {
        "id": match.id,
        "label": match.label,
        "score": round(match.score, 4),
        "status": match.status,
        "claim": match.claim.text,
        "claim_source": match.claim.source,
        "statement": match.statement.text,
        "item": {"id": item.id, "guid": item.guid, "url": item.url, "title": item.title, "feed": item.feed.name,
                 "feed_id": item.feed_id},
        "release": {"id": match.release.id, "title": match.release.title},
        "reasons": match.reasons,
        "probabilities": match.probabilities,
        "model_version": match.model_version,
        "created_at": match.created_at.isoformat(),
        "reviewed_at": match.reviewed_at.isoformat() if match.reviewed_at else None,
        "note": match.note,
    }
