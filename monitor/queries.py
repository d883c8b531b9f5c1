"""Read-side queries shared by the CLI and the dashboard (review queue, match details, overview aggregates).

The review queue is ordered most confident first, then newest (``score DESC, id DESC``) and paginated by keyset:
``before=(score, id)`` of the last row seen, so a deep page costs the same as the first one whatever the filters.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, case, func, literal_column, or_, select, table, text, tuple_
from sqlalchemy.orm import Session, joinedload

from monitor.storage.tables import Claim, Feed, Item, Match, Release, Statement

DATE_FIELDS = ("created", "published")  # match created_at | item published_at
SQLITE_FOLD = "monitor_fold"  # a Python casefold registered on SQLite connections (SQLite's own is ASCII-only)
SEARCH_FTS = "search_fts"  # SQLite FTS5 trigram index of claim + item text (migration 0007), rowid = claims.id
TRIGRAM = 3  # shorter needles cannot use a trigram index (they scan)
SQLITE_WITH_FTS = "sqlite+fts"  # what _prepare() calls SQLite when the search index exists


@dataclass(frozen=True)
class MatchFilter:
    """Filters of the review queue; ``None`` means "any". All of them combine (AND).

    ``assignee_id`` picks one assignee; ``unassigned=True`` picks matches with none (it wins over
    ``assignee_id``). ``date_from``/``date_to`` are inclusive UTC days on ``date_field`` ("created": when
    the match was made; "published": the item's publication time). ``q`` is a case-insensitive substring
    searched in the claim text and the item's title, summary and content.
    """

    status: str | None = None
    label: str | None = None
    release_id: int | None = None
    feed_id: int | None = None
    min_score: float | None = None
    language: str | None = None
    date_field: str = "created"
    date_from: date | None = None
    date_to: date | None = None
    assignee_id: int | None = None
    unassigned: bool = False
    q: str | None = None

    @property
    def needs_item(self) -> bool:
        return bool(self.feed_id or self.language or self.q
                    or (self.date_field == "published" and (self.date_from or self.date_to)))


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def escape_like(text: str, escape: str = "\\") -> str:
    """``text`` with the LIKE wildcards (and the escape character) escaped."""
    return text.replace(escape, escape * 2).replace("%", escape + "%").replace("_", escape + "_")


def _fold(value: str | None) -> str | None:
    return None if value is None else unicodedata.normalize("NFC", value).casefold()


def _prepare(session: Session, flt: MatchFilter) -> str:
    """The dialect name; on SQLite, registers the Unicode casefold used by the text search, and says
    ``SQLITE_WITH_FTS`` where the search index of migration 0007 exists (looked up once per connection)."""
    dialect = session.get_bind().dialect.name
    if flt.q and dialect == "sqlite":
        connection = session.connection()
        raw = connection.connection.driver_connection
        raw.create_function(SQLITE_FOLD, 1, _fold, deterministic=True)  # type: ignore[union-attr]
        if "monitor_search_fts" not in connection.info:
            connection.info["monitor_search_fts"] = bool(connection.exec_driver_sql(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (SEARCH_FTS,)).scalar())
        if connection.info["monitor_search_fts"]:
            return SQLITE_WITH_FTS
    return dialect


def _contains(column: Any, needle: str, dialect: str) -> ColumnElement[bool]:
    if dialect == "sqlite":
        pattern = "%" + escape_like(_fold(needle) or "") + "%"
        return func.monitor_fold(column).like(pattern, escape="\\")  # type: ignore[no-any-return]
    pattern = "%" + escape_like(unicodedata.normalize("NFC", needle)) + "%"
    return column.ilike(pattern, escape="\\")  # type: ignore[no-any-return]


def _apply(query: Select[Any], flt: MatchFilter, dialect: str = "default") -> Select[Any]:
    if flt.status:
        query = query.where(Match.status == flt.status)
    if flt.label:
        query = query.where(Match.label == flt.label)
    if flt.release_id:
        query = query.where(Match.release_id == flt.release_id)
    if flt.min_score is not None:
        query = query.where(Match.score >= flt.min_score)
    if flt.unassigned:
        query = query.where(Match.assignee_id.is_(None))
    elif flt.assignee_id:
        query = query.where(Match.assignee_id == flt.assignee_id)
    if flt.needs_item:
        query = query.join(Claim, Claim.id == Match.claim_id).join(Item, Item.id == Claim.item_id)
    if flt.feed_id:
        query = query.where(Item.feed_id == flt.feed_id)
    if flt.language:
        query = query.where(func.lower(Item.language) == flt.language.lower())
    column = Item.published_at if flt.date_field == "published" else Match.created_at
    if flt.date_from:
        query = query.where(column >= _day_start(flt.date_from))
    if flt.date_to:
        query = query.where(column < _day_start(flt.date_to + timedelta(days=1)))
    needle = (flt.q or "").strip()
    if needle:
        query = _search(query, needle, dialect)
    return query


def _search(query: Select[Any], needle: str, dialect: str) -> Select[Any]:
    """``q``: a case-insensitive substring of the claim text or the item's title, summary or content.

    SQLite: candidate claims from the FTS5 trigram index (when migrated and the needle has 3+ characters), each
    re-checked with the exact case-folded substring test below, so the index only narrows, never changes, the
    answer. PostgreSQL: ILIKE in semi-joins, which the ``pg_trgm`` GIN indexes of migration 0007 serve (a
    bitmap OR over the item columns); without the extension the same query is answered by scans.
    """
    columns = (Claim.text, Item.title, Item.summary_text, Item.content_text)
    if dialect == "postgresql":
        items = select(Item.id).where(or_(*(_contains(col, needle, dialect) for col in columns[1:])))
        claims = select(Claim.id).where(or_(_contains(Claim.text, needle, dialect), Claim.item_id.in_(items)))
        return query.where(Match.claim_id.in_(claims))
    if dialect == SQLITE_WITH_FTS:
        dialect = "sqlite"
        if len(_fold(needle) or "") >= TRIGRAM:
            phrase = '"' + unicodedata.normalize("NFC", needle).replace('"', '""') + '"'
            candidates = select(literal_column("rowid")).select_from(table(SEARCH_FTS)).where(
                literal_column(SEARCH_FTS).op("MATCH")(phrase))
            query = query.where(Match.claim_id.in_(candidates))
    return query.where(or_(*(_contains(col, needle, dialect) for col in columns)))


def _with_rows(query: Select[Any]) -> Select[Any]:
    return query.options(
        joinedload(Match.claim).joinedload(Claim.item).joinedload(Item.feed),
        joinedload(Match.statement).joinedload(Statement.release),
        joinedload(Match.assignee),
    )


def list_matches(session: Session, flt: MatchFilter = MatchFilter(), *, limit: int | None = None,
                 before: tuple[float, int] | None = None) -> list[Match]:
    """Matches, most confident first then newest; ``before`` = (score, id) of the last row seen (keyset)."""
    dialect = _prepare(session, flt)
    query = _with_rows(_apply(select(Match), flt, dialect)).order_by(Match.score.desc(), Match.id.desc())
    if before is not None:
        score, match_id = before
        query = query.where(tuple_(Match.score, Match.id) < tuple_(score, match_id))  # row values: an index range
    if limit:
        query = query.limit(limit)
    return list(session.scalars(query).unique())


def neighbours(session: Session, flt: MatchFilter, score: float, match_id: int) -> tuple[int | None, int | None]:
    """Ids of the matches just before and just after (score, id) in the queue order under ``flt``."""
    dialect = _prepare(session, flt)
    base = _apply(select(Match.id), flt, dialect)
    prev_id = session.scalar(base.where(tuple_(Match.score, Match.id) > tuple_(score, match_id))
                             .order_by(Match.score.asc(), Match.id.asc()).limit(1))
    next_id = session.scalar(base.where(tuple_(Match.score, Match.id) < tuple_(score, match_id))
                             .order_by(Match.score.desc(), Match.id.desc()).limit(1))
    return prev_id, next_id


def same_story(session: Session, match: Match, limit: int = 50) -> list[Match]:
    """Matches of other items whose claims meet the same statement with the same label (one per item)."""
    rows = session.scalars(
        select(Match).join(Claim, Claim.id == Match.claim_id)
        .where(Match.statement_id == match.statement_id, Match.label == match.label,
               Claim.item_id != match.claim.item_id)
        .options(joinedload(Match.claim).joinedload(Claim.item).joinedload(Item.feed))
        .order_by(Match.score.desc(), Match.id.desc()).limit(limit)
    ).unique()
    seen: set[int] = set()
    result = []
    for row in rows:
        if row.claim.item_id not in seen:
            seen.add(row.claim.item_id)
            result.append(row)
    return result


def distinct_languages(session: Session, limit: int = 100) -> list[str]:
    """The item languages in use, sorted: a loose index scan (one index seek per language, on
    ``ix_items_language``) instead of reading every item, which ``SELECT DISTINCT`` does."""
    query = text("""
        WITH RECURSIVE langs(lang, n) AS (
            SELECT (SELECT min(language) FROM items WHERE language IS NOT NULL AND language <> ''), 1
            UNION ALL
            SELECT (SELECT min(language) FROM items WHERE language > langs.lang), n + 1
            FROM langs WHERE langs.lang IS NOT NULL AND n < :limit
        ) SELECT lang FROM langs WHERE lang IS NOT NULL""")
    return [lang for (lang,) in session.execute(query, {"limit": limit})]


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
                 "feed_id": item.feed_id, "language": item.language,
                 "published_at": item.published_at.isoformat() if item.published_at else None},
        "release": {"id": match.release.id, "title": match.release.title, "url": match.release.url},
        "reasons": match.reasons,
        "probabilities": match.probabilities,
        "model_version": match.model_version,
        "created_at": match.created_at.isoformat(),
        "reviewed_at": match.reviewed_at.isoformat() if match.reviewed_at else None,
        "note": match.note,
        "assignee": match.assignee.username if match.assignee else None,
    }


# --- overview aggregates (GROUP BY in SQL; each returns a few rows per day/week/group) ---------------------

def _day(column: Any, dialect: str) -> Any:
    if dialect == "postgresql":
        return func.date(func.timezone("UTC", column))
    return func.date(column)  # SQLite stores naive UTC text


def _week(column: Any, dialect: str) -> Any:
    """The Monday (UTC) of the week of ``column``."""
    if dialect == "postgresql":
        return func.date(func.date_trunc("week", func.timezone("UTC", column)))
    return func.date(column, "weekday 0", "-6 days")


def as_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def count_flags(session: Session, since: datetime, label: str = "contradicts") -> int:
    return session.scalar(select(func.count(Match.id)).where(Match.label == label, Match.created_at >= since)) or 0


def flags_per_day(session: Session, since: datetime, by: str, label: str = "contradicts"
                  ) -> list[tuple[date, int, str, int]]:
    """(day, group id, group name, count) of flags since ``since``; ``by`` is "feed" or "release"."""
    dialect = session.get_bind().dialect.name
    day = _day(Match.created_at, dialect).label("day")
    if by == "feed":
        query = (select(day, Feed.id, Feed.name, func.count(Match.id))
                 .join(Claim, Claim.id == Match.claim_id).join(Item, Item.id == Claim.item_id)
                 .join(Feed, Feed.id == Item.feed_id).group_by(day, Feed.id, Feed.name))
    else:
        query = (select(day, Release.id, Release.title, func.count(Match.id))
                 .join(Release, Release.id == Match.release_id).group_by(day, Release.id, Release.title))
    query = query.where(Match.label == label, Match.created_at >= since)
    return [(as_date(d), gid, name, n) for d, gid, name, n in session.execute(query)]


def top_contradicting_outlets(session: Session, limit: int = 10) -> list[tuple[int, str, int, int]]:
    """(feed id, name, contradictions flagged, of which confirmed) for the outlets with most flags."""
    flagged = func.count(Match.id)
    confirmed = func.sum(case((Match.status.in_(("confirmed", "escalated", "resolved")), 1), else_=0))
    query = (select(Feed.id, Feed.name, flagged, confirmed)
             .join(Item, Item.feed_id == Feed.id).join(Claim, Claim.item_id == Item.id)
             .join(Match, Match.claim_id == Claim.id)
             .where(Match.label == "contradicts", Match.status != "dismissed")
             .group_by(Feed.id, Feed.name).order_by(flagged.desc(), Feed.name).limit(limit))
    return [(fid, name, n, int(c or 0)) for fid, name, n, c in session.execute(query)]


def _precision_columns() -> tuple[Any, Any]:
    return (func.sum(case((Match.status == "confirmed", 1), else_=0)),
            func.sum(case((Match.status == "dismissed", 1), else_=0)))


def precision_by_week(session: Session, since: datetime | None = None) -> list[tuple[date, int, int]]:
    """(week Monday, confirmed, dismissed) of reviewed contradiction flags, by the week of review."""
    dialect = session.get_bind().dialect.name
    week = _week(Match.reviewed_at, dialect).label("week")
    confirmed, dismissed = _precision_columns()
    query = (select(week, confirmed, dismissed)
             .where(Match.label == "contradicts", Match.status.in_(("confirmed", "dismissed")),
                    Match.reviewed_at.is_not(None))
             .group_by(week).order_by(week))
    if since is not None:
        query = query.where(Match.reviewed_at >= since)
    return [(as_date(w), int(c or 0), int(d or 0)) for w, c, d in session.execute(query)]


def precision_by_model(session: Session) -> list[tuple[str, int, int]]:
    """(model version, confirmed, dismissed) of reviewed contradiction flags."""
    confirmed, dismissed = _precision_columns()
    query = (select(Match.model_version, confirmed, dismissed)
             .where(Match.label == "contradicts", Match.status.in_(("confirmed", "dismissed")))
             .group_by(Match.model_version).order_by(Match.model_version))
    return [(v, int(c or 0), int(d or 0)) for v, c, d in session.execute(query)]


def claimreview_rows(session: Session, flt: MatchFilter, limit: int | None = None) -> list[Match]:
    """Confirmed contradictions under ``flt`` (status and label forced), newest review first."""
    flt = replace(flt, status="confirmed", label="contradicts")
    dialect = _prepare(session, flt)
    query = _with_rows(_apply(select(Match), flt, dialect)).order_by(Match.reviewed_at.desc(), Match.id.desc())
    if limit:
        query = query.limit(limit)
    return list(session.scalars(query).unique())


__all__ = [
    "DATE_FIELDS", "MatchFilter", "claimreview_rows", "count_flags", "distinct_languages", "escape_like",
    "flags_per_day",
    "list_matches", "match_to_dict", "neighbours", "precision_by_model", "precision_by_week", "same_story",
    "top_contradicting_outlets",
]


# -- active learning (issue 6): the queue ordered by the model's uncertainty --------------------------------


def uncertainty_key() -> ColumnElement[float]:
    """``Match.uncertainty`` with unknown values (matches made before it was recorded) ranked last."""
    return func.coalesce(Match.uncertainty, -1.0)


def order_by_uncertainty(query: Select[Any]) -> Select[Any]:
    """Most uncertain first (what teaches the model most when labelled), then newest."""
    return query.order_by(uncertainty_key().desc(), Match.id.desc())


def list_matches_by_uncertainty(session: Session, flt: MatchFilter = MatchFilter(), *, limit: int | None = None,
                                before: tuple[float, int] | None = None) -> list[Match]:
    """Like :func:`list_matches` but most uncertain first; ``before`` = (uncertainty or -1, id) of the last row."""
    dialect = _prepare(session, flt)
    query = order_by_uncertainty(_with_rows(_apply(select(Match), flt, dialect)))
    if before is not None:
        value, match_id = before
        key = uncertainty_key()
        query = query.where(tuple_(key, Match.id) < tuple_(value, match_id))
    if limit:
        query = query.limit(limit)
    return list(session.scalars(query).unique())


def neighbours_by_uncertainty(session: Session, flt: MatchFilter, uncertainty: float | None,
                              match_id: int) -> tuple[int | None, int | None]:
    """Like :func:`neighbours` in the uncertainty order (unknown uncertainty counts as -1, ranked last)."""
    dialect = _prepare(session, flt)
    base = _apply(select(Match.id), flt, dialect)
    key, value = uncertainty_key(), -1.0 if uncertainty is None else uncertainty
    prev_id = session.scalar(base.where(tuple_(key, Match.id) > tuple_(value, match_id))
                             .order_by(key.asc(), Match.id.asc()).limit(1))
    next_id = session.scalar(base.where(tuple_(key, Match.id) < tuple_(value, match_id))
                             .order_by(key.desc(), Match.id.desc()).limit(1))
    return prev_id, next_id
