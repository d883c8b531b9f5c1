"""Alert rules (admins and reviewers): watched releases and outlets, minimum confidence, channel and target,
window and rate limit. Admins also see the delivery log."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import DecimalField, IntegerField, SelectField, SelectMultipleField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, NumberRange

from dashboard.auth import REVIEW_ROLES, require_role
from dashboard.db import get_db, state
from monitor.alerts.rules import create_rule, delete_rule, get_rule, list_deliveries, list_rules
from monitor.errors import MonitorError, NotFoundError
from monitor.storage.tables import Feed, Release

bp = Blueprint("alerts", __name__)


class RuleForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(_l("Give the rule a name.")), Length(max=200)])
    channel = SelectField(_l("Channel"), choices=[SelectChoice("email", _l("email")),
                                                    SelectChoice("webhook", _l("webhook (signed JSON POST)"))])
    target = StringField(_l("Send to"), validators=[DataRequired(_l("Enter email addresses or a webhook URL.")),
                                                    Length(max=2048)])
    min_score = DecimalField(_l("Minimum confidence"), default=0.8, places=2,
                             validators=[NumberRange(0, 1, _l("Choose between 0 and 1."))])
    release_ids = SelectMultipleField(_l("Watched releases (none selected: all)"), coerce=int)
    feed_ids = SelectMultipleField(_l("Outlets (none selected: all)"), coerce=int)
    window_minutes = IntegerField(_l("One alert per story within (minutes)"), default=24 * 60,
                                  validators=[NumberRange(1, 60 * 24 * 30, _l("Choose 1 minute to 30 days."))])
    max_per_hour = IntegerField(_l("At most alerts per hour"), default=20,
                                validators=[NumberRange(1, 10000, _l("Choose at least 1."))])


def _form(form: RuleForm | None = None) -> RuleForm:
    form = form or RuleForm(formdata=None)
    db = get_db()
    form.release_ids.choices = [SelectChoice(r.id, r.title[:80]) for r in db.scalars(
        select(Release).where(Release.retired.is_(False)).order_by(Release.title))]
    form.feed_ids.choices = [SelectChoice(f.id, f.name) for f in db.scalars(
        select(Feed).where(Feed.kind == "news").order_by(Feed.name))]
    return form


def _render(form: RuleForm | None = None, status: int = 200) -> Any:
    db = get_db()
    is_admin = current_user.role == "admin"
    rules = list_rules(db)
    names = {r.id: r.name for r in rules}
    log = list_deliveries(db, limit=100) if is_admin else []
    releases = dict(db.execute(select(Release.id, Release.title)).all())
    feeds = dict(db.execute(select(Feed.id, Feed.name)).all())
    return render_template("alerts/index.html", rules=rules, form=_form(form), log=log, names=names,
                           is_admin=is_admin, releases=releases, feeds=feeds), status


@bp.route("/alerts")
@require_role(*REVIEW_ROLES)
def index() -> Any:
    return _render()


@bp.route("/alerts/add", methods=["POST"])
@require_role(*REVIEW_ROLES)
def add() -> Any:
    form = _form(RuleForm())
    if not form.validate_on_submit():
        return _render(form, 400)
    db = get_db()
    try:
        rule = create_rule(db, name=form.name.data or "", channel=form.channel.data or "email",
                           target=form.target.data or "", allow_hosts=state().settings.fetch_allow_hosts,
                           release_ids=list(form.release_ids.data or []), feed_ids=list(form.feed_ids.data or []),
                           min_score=float(form.min_score.data or 0), window_minutes=form.window_minutes.data or 1,
                           max_per_hour=form.max_per_hour.data or 1, created_by_id=current_user.id)
    except MonitorError as exc:
        db.rollback()
        form.target.errors = [*form.target.errors, str(exc)]
        return _render(form, 400)
    db.commit()
    flash(_("Alert rule “%(name)s” added.", name=rule.name), "success")
    return redirect(url_for("alerts.index"), 303)


def _rule_or_404(rule_id: int) -> Any:
    try:
        return get_rule(get_db(), rule_id)
    except NotFoundError:
        abort(404)


@bp.route("/alerts/<int:rule_id>/toggle", methods=["POST"])
@require_role(*REVIEW_ROLES)
def toggle(rule_id: int) -> Any:
    rule = _rule_or_404(rule_id)
    rule.enabled = not rule.enabled
    get_db().commit()
    flash(_("Alert rule “%(name)s” enabled.", name=rule.name) if rule.enabled
          else _("Alert rule “%(name)s” paused.", name=rule.name), "success")
    return redirect(url_for("alerts.index"), 303)


@bp.route("/alerts/<int:rule_id>/delete", methods=["POST"])
@require_role(*REVIEW_ROLES)
def delete(rule_id: int) -> Any:
    _rule_or_404(rule_id)
    rule = delete_rule(get_db(), rule_id)
    get_db().commit()
    flash(_("Alert rule “%(name)s” removed.", name=rule.name), "success")
    return redirect(url_for("alerts.index"), 303)
