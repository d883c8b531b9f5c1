"""Exports of the filtered review queue (CSV, JSON) and of confirmed contradictions as schema.org ClaimReview.

The query string is the queue's (``dashboard.matches.parse_queue_args``), so an export link copied from the
queue gives exactly the rows on screen (all pages). CSV and JSON are streamed in keyset batches; the session's
identity map is emptied after each batch so memory stays flat. Spreadsheet formulas are neutralised in CSV.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Response, current_app, stream_with_context
from sqlalchemy.orm import Session

from dashboard.db import get_db
from dashboard.matches import queue_args
from dashboard.security import safe_http_url
from monitor.queries import MatchFilter, claimreview_rows, list_matches, match_to_dict
from monitor.storage.tables import Match

bp = Blueprint("exports", __name__, url_prefix="/export")

BATCH = 500
DEFAULT_ORGANISATION = "Press office"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
CSV_COLUMNS = ("id", "created_at", "status", "label", "confidence", "model_version", "outlet", "item_title",
               "item_url", "item_language", "item_published_at", "claim", "release_id", "release_title",
               "release_url", "statement", "assignee", "reviewed_at", "note")


def csv_cell(value: Any) -> Any:
    """A cell that a spreadsheet will not run: text starting with = + - @ (or tab/CR) gets a leading quote."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _iso(value: Any) -> str:
    return value.isoformat() if value is not None else ""


def csv_row(match: Match) -> list[Any]:
    item, release = match.claim.item, match.statement.release
    return [csv_cell(v) for v in (
        match.id, _iso(match.created_at), match.status, match.label, round(match.score, 4), match.model_version,
        item.feed.name, item.title, item.url, item.language, _iso(item.published_at), match.claim.text,
        release.id, release.title, release.url, match.statement.text,
        match.assignee.username if match.assignee else "", _iso(match.reviewed_at), match.note,
    )]


def iter_matches(db: Session, flt: MatchFilter, max_rows: int) -> Iterator[Match]:
    """Every match under ``flt`` in queue order, fetched ``BATCH`` rows at a time by keyset."""
    before: tuple[float, int] | None = None
    sent = 0
    while sent < max_rows:
        rows = list_matches(db, flt, limit=min(BATCH, max_rows - sent), before=before)
        if not rows:
            return
        for row in rows:
            yield row
        sent += len(rows)
        before = (rows[-1].score, rows[-1].id)
        db.expunge_all()


def _max_rows() -> int:
    return int(current_app.config.get("EXPORT_MAX_ROWS", 100_000))


def _download(body: Any, mimetype: str, filename: str) -> Response:
    return Response(body, mimetype=mimetype,
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@bp.route("/matches.csv")
def matches_csv() -> Response:
    flt, db, max_rows = queue_args().flt, get_db(), _max_rows()

    def generate() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(CSV_COLUMNS)
        for n, match in enumerate(iter_matches(db, flt, max_rows), 1):
            writer.writerow(csv_row(match))
            if n % 100 == 0:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue()

    return _download(stream_with_context(generate()), "text/csv", "matches.csv")


@bp.route("/matches.json")
def matches_json() -> Response:
    flt, db, max_rows = queue_args().flt, get_db(), _max_rows()

    def generate() -> Iterator[str]:
        yield "["
        for n, match in enumerate(iter_matches(db, flt, max_rows)):
            yield ("," if n else "") + "\n" + json.dumps(match_to_dict(match), ensure_ascii=False)
        yield "\n]\n"

    return _download(stream_with_context(generate()), "application/json", "matches.json")


def claim_review(match: Match, organisation: str) -> dict[str, Any]:
    """One schema.org ClaimReview for a confirmed contradiction."""
    item, release = match.claim.item, match.statement.release
    appearance: dict[str, Any] = {"@type": "CreativeWork", "headline": item.title}
    item_url = safe_http_url(item.url)
    if item_url:
        appearance["url"] = item_url
    if item.published_at:
        appearance["datePublished"] = item.published_at.isoformat()
    claim: dict[str, Any] = {
        "@type": "Claim",
        "author": {"@type": "Organization", "name": item.feed.name},
        "appearance": [appearance],
    }
    if item.published_at:
        claim["datePublished"] = item.published_at.date().isoformat()
    review: dict[str, Any] = {
        "@type": "ClaimReview",
        "claimReviewed": match.claim.text,
        "itemReviewed": claim,
        "author": {"@type": "Organization", "name": organisation},
        "reviewRating": {"@type": "Rating", "ratingValue": 1, "bestRating": 5, "worstRating": 1,
                         "alternateName": "False"},
        "datePublished": (match.reviewed_at or match.created_at).date().isoformat(),
    }
    release_url = safe_http_url(release.url)
    if release_url:
        review["url"] = release_url
    return review


@bp.route("/claimreview.jsonld")
def claimreview() -> Response:
    organisation = str(current_app.config.get("ORGANISATION_NAME") or DEFAULT_ORGANISATION)
    rows = claimreview_rows(get_db(), queue_args().flt, limit=_max_rows())
    document = {"@context": "https://schema.org", "@graph": [claim_review(m, organisation) for m in rows]}
    # "<" escaped so the document can be pasted into a <script type="application/ld+json"> safely
    body = json.dumps(document, ensure_ascii=False, indent=2).replace("<", "\\u003c")
    return _download(body, "application/ld+json", "claimreview.jsonld")
