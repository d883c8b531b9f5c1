"""The releases page: list, add (paste, upload, URL), a release's statements with their extracted facts,
metadata editing, retire/unretire. Admins and reviewers manage; viewers read."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from flask_login import current_user
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload
from wtforms import SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional

from dashboard.auth import MANAGE_ROLES, require_role
from dashboard.db import get_db, state
from dashboard.security import safe_http_url
from monitor.errors import FetchError, MonitorError, NotFoundError
from monitor.pipeline.refresh import fetch_guard, fetch_limits
from monitor.pipeline.releases import (
    LANGUAGES,
    add_release,
    decode_document,
    fetch_release_document,
    parse_published,
    set_retired,
    update_release,
)
from monitor.storage.tables import Release, Statement

try:  # the models package may be absent in a slim deployment; the page then shows statements only
    from models.facts import extract_facts
except ImportError:  # pragma: no cover - depends on the installation
    extract_facts = None

bp = Blueprint("releases", __name__)

RELEASE_MAX_BYTES = 1024 * 1024
_UPLOAD_ENDPOINTS = frozenset({"releases.add_text", "releases.add_file"})
_LANGUAGE_CHOICES = [SelectChoice("", _l("detect")), *(SelectChoice(code, code) for code in LANGUAGES)]


class _Metadata(FlaskForm):
    title = StringField(_l("Title"), validators=[Optional(), Length(max=300)])
    published = StringField(_l("Published"), validators=[Optional(), Length(max=64)])
    language = SelectField(_l("Language"), choices=_LANGUAGE_CHOICES, default="")


class PasteForm(_Metadata):
    url = StringField(_l("Source URL"), validators=[Optional(), Length(max=2048)])
    body = TextAreaField(_l("Text"), validators=[DataRequired(_l("Paste the text of the release."))])


class UploadForm(_Metadata):
    url = StringField(_l("Source URL"), validators=[Optional(), Length(max=2048)])
    file = FileField(_l("File"), validators=[FileRequired(_l("Choose a .txt, .md or .html file."))])


class UrlForm(_Metadata):
    url = StringField(_l("Release URL"), validators=[DataRequired(_l("Enter the address of the release.")),
                                                 Length(max=2048)])


class EditForm(FlaskForm):
    title = StringField(_l("Title"), validators=[DataRequired(_l("The title cannot be empty.")), Length(max=300)])
    url = StringField(_l("Source URL"), validators=[Optional(), Length(max=2048)])
    published = StringField(_l("Published (UTC)"), validators=[Optional(), Length(max=64)])
    language = SelectField(_l("Language"), choices=[SelectChoice(code, code) for code in LANGUAGES])


def _limit() -> int:
    return int(current_app.config.get("RELEASE_MAX_BYTES", RELEASE_MAX_BYTES))


@bp.url_value_preprocessor
def _upload_limit(endpoint: str | None, _values: dict[str, Any] | None) -> None:
    # Before every before_request (the CSRF check parses the form): allow a release-sized body here only.
    if endpoint in _UPLOAD_ENDPOINTS:
        request.max_content_length = _limit() + 64 * 1024


def _forms(**given: FlaskForm) -> dict[str, FlaskForm]:
    forms: dict[str, FlaskForm] = {
        "paste_form": PasteForm(prefix="paste", formdata=None),
        "upload_form": UploadForm(prefix="upload", formdata=None),
        "url_form": UrlForm(prefix="fetch", formdata=None),
    }
    forms.update(given)
    return forms


def _render_index(status: int = 200, **given: FlaskForm) -> Any:
    db = get_db()
    counts = (select(Statement.release_id, func.count(Statement.id).label("n"))
              .group_by(Statement.release_id).subquery())
    rows = db.execute(
        select(Release, func.coalesce(counts.c.n, 0))
        .outerjoin(counts, counts.c.release_id == Release.id)
        .order_by(Release.retired, Release.published_at.desc().nulls_last(), Release.id.desc())
    ).all()
    return render_template("releases/index.html", rows=rows, can_manage=current_user.role in MANAGE_ROLES,
                           limit_kb=_limit() // 1024, **_forms(**given)), status


@bp.route("/releases")
def index() -> Any:
    return _render_index()


def _message(err: Exception) -> str:
    text = str(err) or _("invalid value")
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


def _metadata(form: _Metadata) -> dict[str, Any] | None:
    """Keyword arguments for add_release from the form's metadata, or None (errors put on the form)."""
    try:
        published_at = parse_published((form.published.data or "").strip() or None)
    except MonitorError as err:
        form.published.errors = [*form.published.errors, _message(err)]
        return None
    meta: dict[str, Any] = {"title": form.title.data or None, "published_at": published_at,
                            "language": form.language.data or None}
    url = (form.url.data or "").strip() or None  # type: ignore[attr-defined]
    if url is not None and safe_http_url(url) is None:
        form.url.errors = [*form.url.errors, _("Use an http:// or https:// address.")]  # type: ignore[attr-defined]
        return None
    meta["url"] = url
    return meta


def _store(text: str, meta: dict[str, Any]) -> Any:
    db = get_db()
    try:
        release, created = add_release(db, text, **meta)
    except MonitorError:
        db.rollback()
        raise
    db.commit()
    if created:
        flash(ngettext("Release added with %(num)d statement.", "Release added with %(num)d statements.",
                       len(release.statements)), "success")
    else:
        flash(_("This text is already stored as release %(id)s; nothing was added.", id=release.id), "info")
    return redirect(url_for("releases.detail", release_id=release.id))


@bp.route("/releases/add/text", methods=["POST"])
@require_role(*MANAGE_ROLES)
def add_text() -> Any:
    form = PasteForm(prefix="paste")
    if not form.validate_on_submit():
        return _render_index(400, paste_form=form)
    meta = _metadata(form)
    if meta is None:
        return _render_index(400, paste_form=form)
    body = form.body.data or ""
    if len(body.encode("utf-8")) > _limit():
        form.body.errors = [*form.body.errors, _("The text is larger than the %(kb)s KB limit.", kb=_limit() // 1024)]
        return _render_index(400, paste_form=form)
    try:
        return _store(body, meta)
    except MonitorError as err:
        form.body.errors = [*form.body.errors, _message(err)]
        return _render_index(400, paste_form=form)


@bp.route("/releases/add/file", methods=["POST"])
@require_role(*MANAGE_ROLES)
def add_file() -> Any:
    form = UploadForm(prefix="upload")
    if not form.validate_on_submit():
        return _render_index(400, upload_form=form)
    meta = _metadata(form)
    if meta is None:
        return _render_index(400, upload_form=form)
    upload = form.file.data
    try:
        text = decode_document(upload.read(_limit() + 1), upload.filename, max_bytes=_limit())
        return _store(text, meta)
    except MonitorError as err:
        form.file.errors = [*form.file.errors, _message(err)]
        return _render_index(400, upload_form=form)


@bp.route("/releases/add/url", methods=["POST"])
@require_role(*MANAGE_ROLES)
def add_url() -> Any:
    form = UrlForm(prefix="fetch")
    if not form.validate_on_submit():
        return _render_index(400, url_form=form)
    meta = _metadata(form)
    if meta is None:
        return _render_index(400, url_form=form)
    settings = state().settings
    try:  # the fetch runs before the request's database session is opened
        text, page_title = fetch_release_document(meta["url"], limits=fetch_limits(settings),
                                                  guard=fetch_guard(settings))
        meta["title"] = meta["title"] or page_title
        meta["source"] = "manual"
        return _store(text, meta)
    except FetchError as err:
        form.url.errors = [*form.url.errors, _("The page could not be fetched: %(error)s", error=_message(err))]
    except MonitorError as err:
        form.url.errors = [*form.url.errors, _message(err)]
    return _render_index(400, url_form=form)


def _release_or_404(release_id: int) -> Release:
    release = get_db().scalar(select(Release).where(Release.id == release_id)
                              .options(selectinload(Release.statements)))
    if release is None:
        abort(404)
    return release


def statement_facts(text: str) -> list[Any] | None:
    """The facts of one statement, or None when the models package is not installed."""
    if extract_facts is None:
        return None
    try:
        return list(extract_facts(text))
    except Exception:  # noqa: BLE001 - a fact-extraction bug must not take the page down
        current_app.logger.exception("fact extraction failed")
        return []


@bp.route("/releases/<int:release_id>", methods=["GET"])
def detail(release_id: int, form: EditForm | None = None, status: int = 200) -> Any:
    release = _release_or_404(release_id)
    if form is None:
        form = EditForm(formdata=None, title=release.title, url=release.url or "",
                        published=release.published_at.strftime("%Y-%m-%d %H:%M") if release.published_at else "",
                        language=release.language if release.language in LANGUAGES else LANGUAGES[0])
    statements = [{"statement": s, "facts": statement_facts(s.text)} for s in release.statements]
    return render_template("releases/detail.html", release=release, statements=statements, form=form,
                           facts_available=extract_facts is not None, release_url=safe_http_url(release.url),
                           can_manage=current_user.role in MANAGE_ROLES), status


@bp.route("/releases/<int:release_id>/edit", methods=["POST"])
@require_role(*MANAGE_ROLES)
def edit(release_id: int) -> Any:
    db = get_db()
    _release_or_404(release_id)
    form = EditForm()
    if not form.validate_on_submit():
        return detail(release_id, form, 400)
    try:
        published_at = parse_published((form.published.data or "").strip() or None)
    except MonitorError as err:
        form.published.errors = [*form.published.errors, _message(err)]
        return detail(release_id, form, 400)
    try:
        update_release(db, release_id, title=form.title.data, url=form.url.data or None,
                       published_at=published_at, language=form.language.data)
    except MonitorError as err:
        db.rollback()
        form.title.errors = [*form.title.errors, _message(err)]
        return detail(release_id, form, 400)
    db.commit()
    flash(_("Release saved."), "success")
    return redirect(url_for("releases.detail", release_id=release_id))


def _set_retired(release_id: int, retired: bool) -> Any:
    db = get_db()
    try:
        release = set_retired(db, release_id, retired)
    except NotFoundError:
        abort(404)
    db.commit()
    flash(_("Release retired: it is kept but no longer matched against news.") if retired
          else _("Release “%(title)s” is matched against news again.", title=release.title), "success")
    return redirect(url_for("releases.detail", release_id=release_id))


@bp.route("/releases/<int:release_id>/retire", methods=["POST"])
@require_role(*MANAGE_ROLES)
def retire(release_id: int) -> Any:
    return _set_retired(release_id, True)


@bp.route("/releases/<int:release_id>/unretire", methods=["POST"])
@require_role(*MANAGE_ROLES)
def unretire(release_id: int) -> Any:
    return _set_retired(release_id, False)
