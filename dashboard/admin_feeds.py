"""The feeds page: every feed with its health in plain words, items per day, and (for admins and reviewers)
add, edit, pause/resume, remove, and OPML import/export. Viewers read only."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from flask import Blueprint, Response, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from flask_login import current_user
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from sqlalchemy import func, select
from wtforms import IntegerField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from dashboard.auth import MANAGE_ROLES, require_role
from dashboard.db import get_db
from dashboard.i18n import KIND_NAMES, format_when, relative
from dashboard.security import safe_http_url
from monitor.errors import MonitorError, NotFoundError
from monitor.pipeline.feeds import (
    KINDS,
    MAX_INTERVAL_MINUTES,
    add_feed,
    export_opml,
    get_feed,
    import_opml,
    items_per_day,
    list_feeds,
    remove_feed,
    set_enabled,
    update_feed,
)
from monitor.storage.tables import Feed, Item

bp = Blueprint("feeds", __name__)

DAYS = 7
OPML_MAX_BYTES = 1024 * 1024
_UPLOAD_ENDPOINTS = frozenset({"feeds.import_feeds"})


class FeedForm(FlaskForm):
    url = StringField(_l("Feed URL"), validators=[DataRequired(_l("Enter the feed's URL.")), Length(max=2048)])
    name = StringField(_l("Name"), validators=[Optional(), Length(max=255)])
    kind = SelectField(_l("Kind"), default="news", choices=[
        SelectChoice("news", _l("news")), SelectChoice("official", _l("official (items become releases)"))])
    interval_minutes = IntegerField(
        _l("Fetch every (minutes)"), default=30,
        validators=[DataRequired(_l("Enter a whole number of minutes.")),
                    NumberRange(1, MAX_INTERVAL_MINUTES, _l("Choose between %(min)s and %(max)s minutes."))])


class FeedEditForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(_l("The name cannot be empty.")), Length(max=255)])
    kind = SelectField(_l("Kind"), choices=[SelectChoice(k, KIND_NAMES.get(k, k)) for k in KINDS])
    interval_minutes = IntegerField(
        _l("Fetch every (minutes)"),
        validators=[DataRequired(_l("Enter a whole number of minutes.")),
                    NumberRange(1, MAX_INTERVAL_MINUTES, _l("Choose between %(min)s and %(max)s minutes."))])


class OpmlForm(FlaskForm):
    file = FileField(_l("OPML file"), validators=[FileRequired(_l("Choose an OPML file."))])


@bp.url_value_preprocessor
def _upload_limit(endpoint: str | None, _values: dict[str, Any] | None) -> None:
    # Runs before every before_request (the CSRF check reads the form), so the upload may exceed the app's
    # small default request limit; the file itself is checked against OPML_MAX_BYTES with a clear message.
    if endpoint in _UPLOAD_ENDPOINTS:
        request.max_content_length = _opml_limit() + 64 * 1024


def _opml_limit() -> int:
    return int(current_app.config.get("OPML_MAX_BYTES", OPML_MAX_BYTES))


@dataclass(frozen=True)
class Health:
    state: str  # ok | failing | paused | new
    lines: list[str]


def _when(value: datetime | None, now: datetime) -> str:
    """The time in the display zone and locale, and how long ago (or until) in words."""
    if value is None:
        return _("never")
    value = value.astimezone(UTC)
    rel = _("just now") if abs((now - value).total_seconds()) < 90 else relative(value, now)
    return f"{format_when(value)} ({rel})"


def feed_health(feed: Feed, now: datetime) -> Health:
    """The feed's state and a few sentences a press officer can read without knowing HTTP."""
    lines: list[str] = []
    if not feed.enabled:
        state = "paused"
        lines.append(_("Paused: %(reason)s", reason=feed.disabled_reason) if feed.disabled_reason
                     else _("Paused by staff."))
    elif feed.error_count:
        state = "failing"
    elif feed.last_fetched_at is None:
        state = "new"
    else:
        state = "ok"
    if feed.last_fetched_at is None:
        lines.append(_("Never fetched yet."))
    else:
        when = _when(feed.last_fetched_at, now)
        lines.append(_("Last fetched %(when)s (HTTP %(status)s).", when=when, status=feed.last_status)
                     if feed.last_status else _("Last fetched %(when)s.", when=when))
        if feed.last_success_at and feed.last_success_at != feed.last_fetched_at:
            lines.append(_("Last success %(when)s.", when=_when(feed.last_success_at, now)))
    if feed.error_count:
        lines.append(ngettext("%(num)d failure in a row.", "%(num)d failures in a row.", feed.error_count))
    if feed.last_error and (feed.error_count or not feed.enabled):
        lines.append(_("Last error (%(when)s): %(error)s", when=_when(feed.last_error_at, now), error=feed.last_error))
    if feed.enabled:
        if feed.next_fetch_at is None or feed.next_fetch_at <= now:
            lines.append(_("Next fetch: on the next scheduler run."))
        else:
            lines.append(_("Next fetch %(when)s.", when=_when(feed.next_fetch_at, now)))
    for warning in feed.warnings or []:
        lines.append(_("Parser warning: %(warning)s", warning=warning))
    return Health(state, lines)


def _render_index(form: FeedForm | None = None, opml_form: OpmlForm | None = None,
                  opml_report: Any = None, status: int = 200) -> Any:
    db = get_db()
    now = datetime.now(UTC)
    feeds = list_feeds(db)
    counts = items_per_day(db, DAYS, now)
    first_day = now.date() - timedelta(days=DAYS - 1)
    days: list[date] = [first_day + timedelta(days=i) for i in range(DAYS)]
    rows = [{"feed": f, "health": feed_health(f, now), "per_day": counts.get(f.id, [0] * DAYS),
             "link": safe_http_url(f.url)} for f in feeds]
    return render_template(
        "feeds/index.html", rows=rows, days=days,
        form=form or FeedForm(formdata=None), opml_form=opml_form or OpmlForm(formdata=None),
        opml_report=opml_report, can_manage=current_user.role in MANAGE_ROLES,
        opml_limit_kb=_opml_limit() // 1024,
    ), status


@bp.route("/feeds")
def index() -> Any:
    return _render_index()


@bp.route("/feeds/add", methods=["POST"])
@require_role(*MANAGE_ROLES)
def add() -> Any:
    form = FeedForm()
    if not form.validate_on_submit():
        return _render_index(form=form, status=400)
    db = get_db()
    try:
        feed = add_feed(db, form.url.data or "", name=form.name.data, kind=form.kind.data or "news",
                        interval_minutes=form.interval_minutes.data or 30)
    except (MonitorError, ValueError) as err:
        db.rollback()
        form.url.errors = [*form.url.errors, _message(err)]
        return _render_index(form=form, status=400)
    db.commit()
    flash(_("Feed “%(name)s” added; it is fetched on the next scheduler run.", name=feed.name), "success")
    return redirect(url_for("feeds.index"))


def _message(err: Exception) -> str:
    text = str(err) or _("invalid value")
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


def _feed_or_404(feed_id: int) -> Feed:
    try:
        return get_feed(get_db(), feed_id)
    except NotFoundError:
        abort(404)


@bp.route("/feeds/<int:feed_id>/edit", methods=["GET", "POST"])
@require_role(*MANAGE_ROLES)
def edit(feed_id: int) -> Any:
    db = get_db()
    feed = _feed_or_404(feed_id)
    form = FeedEditForm(obj=feed) if request.method == "GET" else FeedEditForm()
    if request.method == "POST":
        if form.validate_on_submit():
            try:
                update_feed(db, feed_id, name=form.name.data, interval_minutes=form.interval_minutes.data,
                            kind=form.kind.data)
            except MonitorError as err:
                db.rollback()
                form.name.errors = [*form.name.errors, _message(err)]
            else:
                db.commit()
                flash(_("Feed “%(name)s” saved.", name=feed.name), "success")
                return redirect(url_for("feeds.index"))
        return render_template("feeds/edit.html", feed=feed, form=form), 400
    return render_template("feeds/edit.html", feed=feed, form=form)


@bp.route("/feeds/<int:feed_id>/pause", methods=["POST"])
@require_role(*MANAGE_ROLES)
def pause(feed_id: int) -> Any:
    db = get_db()
    feed = _feed_or_404(feed_id)
    set_enabled(db, feed_id, False)
    db.commit()
    flash(_("Feed “%(name)s” paused; it is not fetched until resumed.", name=feed.name), "success")
    return redirect(url_for("feeds.index"))


@bp.route("/feeds/<int:feed_id>/resume", methods=["POST"])
@require_role(*MANAGE_ROLES)
def resume(feed_id: int) -> Any:
    db = get_db()
    feed = _feed_or_404(feed_id)
    set_enabled(db, feed_id, True)
    db.commit()
    flash(_("Feed “%(name)s” resumed; its failure count was cleared and it is fetched on the next run.",
            name=feed.name), "success")
    return redirect(url_for("feeds.index"))


@bp.route("/feeds/<int:feed_id>/remove", methods=["GET", "POST"])
@require_role(*MANAGE_ROLES)
def remove(feed_id: int) -> Any:
    db = get_db()
    feed = _feed_or_404(feed_id)
    if request.method == "GET":
        item_count = db.scalar(select(func.count(Item.id)).where(Item.feed_id == feed_id)) or 0
        return render_template("feeds/remove.html", feed=feed, item_count=item_count)
    name = feed.name
    remove_feed(db, feed_id)
    db.commit()
    flash(_("Feed “%(name)s” removed with its items.", name=name), "success")
    return redirect(url_for("feeds.index"))


@bp.route("/feeds/import", methods=["POST"])
@require_role(*MANAGE_ROLES)
def import_feeds() -> Any:
    form = OpmlForm()
    if not form.validate_on_submit():
        return _render_index(opml_form=form, status=400)
    data = form.file.data.read(_opml_limit() + 1)
    if len(data) > _opml_limit():
        form.file.errors = [*form.file.errors, _("The file is larger than the %(kb)s KB limit.",
                                                 kb=_opml_limit() // 1024)]
        return _render_index(opml_form=form, status=400)
    db = get_db()
    try:
        report = import_opml(db, data)
    except MonitorError as err:
        db.rollback()
        form.file.errors = [*form.file.errors, _message(err)]
        return _render_index(opml_form=form, status=400)
    db.commit()
    flash(_("OPML import: %(added)s added, %(skipped)s skipped (already present), %(invalid)s invalid.",
            added=len(report.added), skipped=len(report.skipped), invalid=len(report.invalid)),
          "success" if not report.invalid else "info")
    return _render_index(opml_report=report)


@bp.route("/feeds.opml")
def export() -> Any:
    body = export_opml(list_feeds(get_db()))
    return Response(body, mimetype="text/x-opml",
                    headers={"Content-Disposition": 'attachment; filename="feeds.opml"'})
