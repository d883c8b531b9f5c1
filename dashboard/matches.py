"""The review queue (filters in the URL, keyset pagination, bulk actions), the match page, and review actions.

The queue has two orders (``order`` in the URL): ``confidence`` (the default: most confident first, then newest)
and ``uncertainty`` (most uncertain first: what teaches the model most when labelled, issue 6). Both page by keyset
(``before=key:id`` of the last row seen) and keep every filter; the match page's next/previous follow the same order.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext, ngettext
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload, selectinload

from dashboard.auth import REVIEW_ROLES, require_role
from dashboard.db import get_db
from dashboard.forms import DISMISS_REASONS, BulkReviewForm, ReviewForm
from dashboard.highlight import segments
from dashboard.i18n import term
from dashboard.security import safe_http_url
from monitor.errors import MonitorError, NotFoundError
from monitor.pipeline.review import STATUSES, review_match
from monitor.queries import (
    MatchFilter,
    distinct_languages,
    list_matches,
    list_matches_by_uncertainty,
    neighbours,
    neighbours_by_uncertainty,
    same_story,
)
from monitor.storage.tables import Claim, Feed, Item, Match, Release, ReviewEvent, Statement, User

bp = Blueprint("matches", __name__)

LABELS = ("contradicts", "supports", "discusses")
ANY = "all"
ORDERS = {"confidence": _l("most confident first"),
          "uncertainty": _l("most uncertain first (teaches the model most)")}
CONTEXT_CHARS = 240
MAX_QUERY_CHARS = 200
MAX_BULK = 500
# Status each action leads to; an action that would not change the status is refused (double submit).
ACTION_TARGET = {"confirm": "confirmed", "dismiss": "dismissed", "escalate": "escalated", "resolve": "resolved",
                 "reopen": "new"}
FLASH_DONE = {"confirm": _l("Confirmed."), "dismiss": _l("Dismissed."), "escalate": _l("Escalated."),
              "resolve": _l("Resolved."), "reopen": _l("Reopened."), "comment": _l("Comment added."),
              "assign": _l("Assignee changed.")}
SHORTCUTS_QUEUE = (("j", _l("next row")), ("k", _l("previous row")), ("Enter / o", _l("open the selected match")),
                   ("x", _l("tick the selected row for a bulk action")), ("?", _l("show or hide this help")))
SHORTCUTS_MATCH = (("c", _l("confirm")), ("d", _l("choose a reason to dismiss")), ("n", _l("next match in the queue")),
                   ("p", _l("previous match in the queue")), ("u", _l("back to the queue")),
                   ("?", _l("show or hide this help")))
_LANG = re.compile(r"[A-Za-z]{2,8}(?:[-_][A-Za-z0-9]{1,8})*")


@dataclass
class QueueArgs:
    """The queue filters read from a query string: the ``MatchFilter``, and what links carry to keep them."""

    flt: MatchFilter
    values: dict[str, str]  # every filter as shown in the form
    url_args: dict[str, str] = field(default_factory=dict)  # only the ones that differ from the defaults

    @property
    def order(self) -> str:
        """``confidence`` or ``uncertainty`` (the queue order; not a filter)."""
        return self.values["order"]


DEFAULTS = {"status": "new", "label": "contradicts", "feed": "", "release": "", "lang": "", "date_field": "created",
            "from": "", "to": "", "min": "", "assignee": "", "q": "", "order": "confidence"}


def _int(value: str) -> int | None:
    return int(value) if value.isdigit() and 0 < len(value) <= 10 and int(value) > 0 else None


def _date(value: str) -> date | None:
    try:
        return date.fromisoformat(value) if len(value) == 10 else None
    except ValueError:
        return None


def parse_queue_args(args: Mapping[str, str], user_id: int | None = None) -> QueueArgs:
    """Filters from ``args``; anything unknown or malformed falls back to its default (never an error)."""
    raw = {key: (args.get(key) or "").strip() for key in DEFAULTS}
    values = dict(DEFAULTS)
    if raw["status"] in (*STATUSES, ANY):
        values["status"] = raw["status"]
    if raw["label"] in (*LABELS, ANY):
        values["label"] = raw["label"]
    feed_id, release_id = _int(raw["feed"]), _int(raw["release"])
    values["feed"] = str(feed_id or "")
    values["release"] = str(release_id or "")
    if _LANG.fullmatch(raw["lang"]):
        values["lang"] = raw["lang"]
    if raw["date_field"] in ("created", "published"):
        values["date_field"] = raw["date_field"]
    date_from, date_to = _date(raw["from"]), _date(raw["to"])
    values["from"] = date_from.isoformat() if date_from else ""
    values["to"] = date_to.isoformat() if date_to else ""
    min_score = None
    try:
        percent = float(raw["min"]) if raw["min"] else None
    except ValueError:
        percent = None
    if percent is not None and math.isfinite(percent) and 0 <= percent <= 100:
        min_score = percent / 100
        values["min"] = f"{percent:g}"
    assignee_id, unassigned = None, False
    if raw["assignee"] == "unassigned":
        unassigned, values["assignee"] = True, "unassigned"
    elif raw["assignee"] == "me" and user_id:
        assignee_id, values["assignee"] = user_id, "me"
    elif _int(raw["assignee"]):
        assignee_id = _int(raw["assignee"])
        values["assignee"] = str(assignee_id)
    values["q"] = raw["q"][:MAX_QUERY_CHARS]
    if raw["order"] in ORDERS:
        values["order"] = raw["order"]
    flt = MatchFilter(
        status=None if values["status"] == ANY else values["status"],
        label=None if values["label"] == ANY else values["label"],
        feed_id=feed_id, release_id=release_id, language=values["lang"] or None, min_score=min_score,
        date_field=values["date_field"], date_from=date_from, date_to=date_to,
        assignee_id=assignee_id, unassigned=unassigned, q=values["q"] or None,
    )
    url_args = {key: value for key, value in values.items() if value != DEFAULTS[key]}
    if not (date_from or date_to):
        url_args.pop("date_field", None)
    return QueueArgs(flt, values, url_args)


def queue_args() -> QueueArgs:
    """The filters of the current request's query string (``me`` is the signed-in user)."""
    return parse_queue_args(request.args, current_user.id if current_user.is_authenticated else None)


def parse_before(value: str | None) -> tuple[float, int] | None:
    """``"key:id"`` -> (key, id); 400 for anything else. The key is the score, or in uncertainty order the
    uncertainty (-1 where unknown, as ``monitor.queries.uncertainty_key``)."""
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


def assignable_users(db: Session) -> list[User]:
    """Active users who may review (the choices of "assign to")."""
    return list(db.scalars(select(User).where(User.active.is_(True), User.role.in_(sorted(REVIEW_ROLES)))
                           .order_by(User.username)))


def _filter_choices(db: Session, qa: QueueArgs) -> dict[str, Any]:
    feeds = db.execute(select(Feed.id, Feed.name).order_by(Feed.name, Feed.id)).all()
    releases = db.execute(select(Release.id, Release.title).where(Release.retired.is_(False))
                          .order_by(Release.published_at.desc(), Release.id.desc()).limit(300)).all()
    if qa.flt.release_id and all(rid != qa.flt.release_id for rid, _ in releases):
        chosen = db.execute(select(Release.id, Release.title).where(Release.id == qa.flt.release_id)).all()
        releases = [*chosen, *releases]
    languages = distinct_languages(db)
    return {"feeds": feeds, "releases": releases, "languages": languages, "users": assignable_users(db)}


@bp.route("/")
def queue() -> Any:
    qa = queue_args()
    before = parse_before(request.args.get("before"))
    page_size = current_app.config["QUEUE_PAGE_SIZE"]
    db = get_db()
    fetch = list_matches_by_uncertainty if qa.order == "uncertainty" else list_matches
    rows = fetch(db, qa.flt, limit=page_size + 1, before=before)
    next_url = None
    if len(rows) > page_size:
        rows = rows[:page_size]
        last = rows[-1]
        next_url = url_for("matches.queue", **qa.url_args, before=f"{_order_key(last, qa.order)!r}:{last.id}")
    return render_template(
        "queue.html",
        matches=rows,
        f=qa.values,
        url_args=qa.url_args,
        status=qa.values["status"],
        order=qa.order,
        orders=ORDERS,
        label=qa.values["label"],
        statuses=(*STATUSES, ANY),
        labels=(*LABELS, ANY),
        next_url=next_url,
        first_url=url_for("matches.queue", **qa.url_args) if before else None,
        dismiss_reasons=DISMISS_REASONS,
        can_review=current_user.role in REVIEW_ROLES,
        shortcuts=SHORTCUTS_QUEUE,
        **_filter_choices(db, qa),
    )


def _order_key(match: Match, order: str) -> float:
    """The keyset value of ``match`` in the queue ``order``."""
    if order == "uncertainty":
        return match.uncertainty if match.uncertainty is not None else -1.0
    return match.score


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
            joinedload(Match.assignee),
            selectinload(Match.events).joinedload(ReviewEvent.user),
        )
    )
    if match is None:
        abort(404)
    return match


@bp.route("/matches/<int:match_id>")
def detail(match_id: int) -> Any:
    db = get_db()
    match = _load_match(match_id)
    qa = queue_args()
    claim, statement = match.claim, match.statement
    item, release = claim.item, statement.release
    claim_field = item.title if claim.source == "title" else item.body_text
    claim_before, claim_after = _context(claim_field or "", claim.start, claim.end, claim.text)
    statement_before, statement_after = _context(release.body or "", statement.start, statement.end,
                                                 statement.text)
    reasons = [r for r in (match.reasons or []) if isinstance(r, dict)]
    if qa.order == "uncertainty":
        prev_id, next_id = neighbours_by_uncertainty(db, qa.flt, match.uncertainty, match.id)
    else:
        prev_id, next_id = neighbours(db, qa.flt, match.score, match.id)
    can_review = current_user.role in REVIEW_ROLES
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
        can_review=can_review,
        users=assignable_users(db) if can_review else [],
        same_story=same_story(db, match),
        url_args=qa.url_args,
        queue_url=url_for("matches.queue", **qa.url_args),
        prev_url=url_for("matches.detail", match_id=prev_id, **qa.url_args) if prev_id else None,
        next_url=url_for("matches.detail", match_id=next_id, **qa.url_args) if next_id else None,
        shortcuts=SHORTCUTS_MATCH,
    )


def _check_review_form(db: Session, form: Any) -> tuple[str | None, Any]:
    """What is wrong with a review or bulk form (a message), and the chosen assignee for ``assign``."""
    if form.action.data == "dismiss" and not form.dismiss_reason.data:
        return gettext("Choose a reason to dismiss."), None
    if form.action.data != "assign":
        return None, None
    valid, assignee = _assignee(db, form.assignee.data)
    return (None if valid else gettext("Choose an active reviewer to assign.")), assignee


def _assignee(db: Session, value: str | None) -> tuple[bool, User | None]:
    """(valid, user) for the submitted assignee id; "" means unassign."""
    if not value:
        return True, None
    user = db.get(User, int(value))
    if user is None or not user.active or user.role not in REVIEW_ROLES:
        return False, None
    return True, user


def _form_errors(form: ReviewForm) -> str:
    return "; ".join(f"{name}: {', '.join(errors)}" for name, errors in form.errors.items())


@bp.route("/matches/<int:match_id>/review", methods=["POST"])
@require_role(*REVIEW_ROLES)
def review(match_id: int) -> Any:
    db = get_db()
    match = db.get(Match, match_id)
    if match is None:
        abort(404)
    back = redirect(url_for("matches.detail", match_id=match_id, **queue_args().url_args))
    form = ReviewForm()
    if not form.validate_on_submit():
        flash(gettext("The review was not saved: %(errors)s", errors=_form_errors(form)), "error")
        return back
    action = form.action.data
    problem, assignee = _check_review_form(db, form)
    if problem:
        flash(problem, "error")
        return back
    if ACTION_TARGET.get(action) == match.status:
        flash(gettext("Nothing changed: the match is already %(status)s.", status=term("status", match.status)),
              "info")
        return back
    if action == "assign":
        if (assignee.id if assignee else None) == match.assignee_id:
            flash(gettext("Nothing changed: the match already has that assignee."), "info")
            return back
    try:
        review_match(db, match_id, current_user.row, action, form.review_note(), assignee=assignee)
    except NotFoundError:
        abort(404)
    except MonitorError as err:
        db.rollback()
        flash(str(err), "error")
        return back
    db.commit()
    flash(str(FLASH_DONE[action]), "success")
    return back


def _bulk_done(action: str, n: int) -> str:
    if action == "confirm":
        return ngettext("Confirmed %(num)d match.", "Confirmed %(num)d matches.", n)
    if action == "dismiss":
        return ngettext("Dismissed %(num)d match.", "Dismissed %(num)d matches.", n)
    if action == "escalate":
        return ngettext("Escalated %(num)d match.", "Escalated %(num)d matches.", n)
    return ngettext("Assigned %(num)d match.", "Assigned %(num)d matches.", n)


def _bulk_ids() -> list[int]:
    ids: list[int] = []
    for value in request.form.getlist("ids"):
        match_id = _int(value.strip())
        if match_id and match_id not in ids:
            ids.append(match_id)
    return ids


@bp.route("/matches/bulk", methods=["POST"])
@require_role(*REVIEW_ROLES)
def bulk() -> Any:
    """Apply one action to the ticked matches; each changed match gets its own audit event."""
    db = get_db()
    back = redirect(url_for("matches.queue", **queue_args().url_args))
    form = BulkReviewForm()
    if not form.validate_on_submit():
        flash(gettext("Nothing was changed: %(errors)s", errors=_form_errors(form)), "error")
        return back
    ids = _bulk_ids()
    if not ids:
        flash(gettext("Tick at least one match first."), "error")
        return back
    if len(ids) > MAX_BULK:
        flash(gettext("At most %(num)d matches at a time.", num=MAX_BULK), "error")
        return back
    action = form.action.data
    problem, assignee = _check_review_form(db, form)
    if problem:
        flash(problem, "error")
        return back
    matches = {m.id: m for m in db.scalars(select(Match).where(Match.id.in_(ids)))}
    changed = unchanged = 0
    try:
        for match_id in ids:
            match = matches.get(match_id)
            if match is None:
                continue
            if ACTION_TARGET.get(action) == match.status or (
                    action == "assign" and (assignee.id if assignee else None) == match.assignee_id):
                unchanged += 1
                continue
            review_match(db, match_id, current_user.row, action, form.review_note(), assignee=assignee)
            changed += 1
    except MonitorError as err:
        db.rollback()
        flash(gettext("Nothing was changed: %(errors)s", errors=err), "error")
        return back
    db.commit()
    message = _bulk_done(action, changed)
    if unchanged:
        message += " " + ngettext("%(num)d already had that state.", "%(num)d already had that state.", unchanged)
    missing = len(ids) - changed - unchanged
    if missing:
        message += " " + ngettext("%(num)d no longer exists.", "%(num)d no longer exist.", missing)
    flash(message, "success" if changed else "info")
    return back
