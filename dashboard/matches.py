"""The review queue, the match page, and the review action."""

from __future__ import annotations

import math
from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import joinedload, selectinload

from dashboard.auth import REVIEW_ROLES, require_role
from dashboard.db import get_db
from dashboard.forms import DISMISS_REASONS, ReviewForm
from dashboard.highlight import segments
from dashboard.security import safe_http_url
from monitor.errors import MonitorError, NotFoundError
from monitor.pipeline.review import STATUSES, review_match
from monitor.queries import MatchFilter, list_matches
from monitor.storage.tables import Claim, Item, Match, ReviewEvent, Statement

bp = Blueprint("matches", __name__)

LABELS = ("contradicts", "supports", "discusses")
ANY = "all"
CONTEXT_CHARS = 240
# Status each action leads to; an action that would not change the status is refused (double submit).
ACTION_TARGET = {"confirm": "confirmed", "dismiss": "dismissed", "reopen": "new"}


def _choice(name: str, allowed: tuple[str, ...], default: str) -> str:
    value = request.args.get(name, default)
    return value if value in allowed or value == ANY else default


def parse_before(value: str | None) -> tuple[float, int] | None:
    """``"score:id"`` -> (score, id); 400 for anything else."""
    if not value:
        return None
    score_text, sep, id_text = value.rpartition(":")
    try:
        score, match_id = float(score_text), int(id_text)
    except ValueError:
        abort(400)
    if not sep or not math.isfinite(score) or match_id < 1:
        abort(400)
    return score, match_id


@bp.route("/")
def queue() -> Any:
    status = _choice("status", STATUSES, "new")
    label = _choice("label", LABELS, "contradicts")
    before = parse_before(request.args.get("before"))
    page_size = current_app.config["QUEUE_PAGE_SIZE"]
    flt = MatchFilter(status=None if status == ANY else status, label=None if label == ANY else label)
    rows = list_matches(get_db(), flt, limit=page_size + 1, before=before)
    next_url = None
    if len(rows) > page_size:
        rows = rows[:page_size]
        last = rows[-1]
        next_url = url_for("matches.queue", status=status, label=label, before=f"{last.score!r}:{last.id}")
    return render_template(
        "queue.html",
        matches=rows,
        status=status,
        label=label,
        statuses=(*STATUSES, ANY),
        labels=(*LABELS, ANY),
        next_url=next_url,
        first_url=url_for("matches.queue", status=status, label=label) if before else None,
    )


def _context(field: str, start: int, end: int, expected: str) -> tuple[str, str]:
    """Text around ``expected`` in ``field`` when the offsets really point at it, else ("", "")."""
    if not (0 <= start <= end <= len(field)) or field[start:end] != expected:
        return "", ""
    before = field[max(0, start - CONTEXT_CHARS):start]
    after = field[end:end + CONTEXT_CHARS]
    return ("…" + before.lstrip() if start > CONTEXT_CHARS else before,
            after.rstrip() + "…" if end + CONTEXT_CHARS < len(field) else after)


def _load_match(match_id: int) -> Match:
    match = get_db().scalar(
        select(Match).where(Match.id == match_id).options(
            joinedload(Match.claim).joinedload(Claim.item).joinedload(Item.feed),
            joinedload(Match.statement).joinedload(Statement.release),
            joinedload(Match.reviewed_by),
            selectinload(Match.events).joinedload(ReviewEvent.user),
        )
    )
    if match is None:
        abort(404)
    return match


@bp.route("/matches/<int:match_id>")
def detail(match_id: int) -> Any:
    match = _load_match(match_id)
    claim, statement = match.claim, match.statement
    item, release = claim.item, statement.release
    claim_field = item.title if claim.source == "title" else item.body_text
    claim_before, claim_after = _context(claim_field or "", claim.start, claim.end, claim.text)
    statement_before, statement_after = _context(release.body or "", statement.start, statement.end,
                                                 statement.text)
    reasons = [r for r in (match.reasons or []) if isinstance(r, dict)]
    return render_template(
        "match.html",
        match=match,
        item=item,
        release=release,
        item_url=safe_http_url(item.url),
        release_url=safe_http_url(release.url),
        claim_segments=segments(claim.text, reasons, "claim_span"),
        statement_segments=segments(statement.text, reasons, "statement_span"),
        claim_context=(claim_before, claim_after),
        statement_context=(statement_before, statement_after),
        reasons=reasons,
        events=match.events,
        dismiss_reasons=DISMISS_REASONS,
        can_review=current_user.role in REVIEW_ROLES,
    )


@bp.route("/matches/<int:match_id>/review", methods=["POST"])
@require_role(*REVIEW_ROLES)
def review(match_id: int) -> Any:
    db = get_db()
    match = db.get(Match, match_id)
    if match is None:
        abort(404)
    back = redirect(url_for("matches.detail", match_id=match_id))
    form = ReviewForm()
    if not form.validate_on_submit():
        flash("The review was not saved: " + "; ".join(
            f"{name}: {', '.join(errors)}" for name, errors in form.errors.items()), "error")
        return back
    action = form.action.data
    if action == "dismiss" and not form.dismiss_reason.data:
        flash("Choose a reason to dismiss.", "error")
        return back
    if ACTION_TARGET.get(action) == match.status:
        flash(f"Nothing changed: the match is already {match.status}.", "info")
        return back
    try:
        review_match(db, match_id, current_user.row, action, form.review_note())
    except NotFoundError:
        abort(404)
    except MonitorError as err:
        db.rollback()
        flash(str(err), "error")
        return back
    db.commit()
    flash({"confirm": "Confirmed.", "dismiss": "Dismissed.", "reopen": "Reopened.",
           "comment": "Comment added."}[action], "success")
    return back
