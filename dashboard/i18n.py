"""The interface language (English or Vietnamese) and locale-aware dates and numbers (Flask-Babel).

Locale: the signed-in user's ``User.locale`` when set, else the best match of the browser's ``Accept-Language``
among ``LOCALES``, else English. Anonymous pages (sign-in, errors) follow the browser. The user changes it with
the small form in the top bar (``POST /account/locale``, CSRF-checked like every form).

Times are stored in UTC and shown in ``DISPLAY_TIMEZONE`` (a Flask config key, an IANA name; default "UTC"),
always with the zone written after them. Feed content, claims and statements are data and are never translated.

Catalogue: ``dashboard/translations/vi/LC_MESSAGES/messages.po``, compiled to ``messages.mo`` (committed); the
commands to refresh it after changing marked strings are in the README ("Dashboard language and time zone").
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from babel import Locale
from flask import Blueprint, Flask, current_app, flash, redirect, request, url_for
from flask_babel import Babel, format_date, format_decimal, format_percent, format_timedelta, get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import AnyOf, Optional

LOCALES = ("en", "vi")
LOCALE_NAMES = {"en": "English", "vi": "Tiếng Việt"}  # each in its own language (not translated)
DEFAULT_TIMEZONE = "UTC"

babel = Babel()
bp = Blueprint("account", __name__)

# Display names of the fixed values the interface shows (the values themselves stay in URLs, forms and data).
STATUS_NAMES = {"new": _l("new"), "confirmed": _l("confirmed"), "dismissed": _l("dismissed"),
                "escalated": _l("escalated"), "resolved": _l("resolved"), "withdrawn": _l("withdrawn"),
                "all": _l("all")}
LABEL_NAMES = {"contradicts": _l("contradicts"), "supports": _l("supports"), "discusses": _l("discusses"),
               "all": _l("all")}
ACTION_NAMES = {"confirm": _l("confirm"), "dismiss": _l("dismiss"), "escalate": _l("escalate"),
                "resolve": _l("resolve"), "reopen": _l("reopen"), "comment": _l("comment"), "assign": _l("assign"),
                "withdraw": _l("withdraw")}
REASON_NAMES = {"not a contradiction": _l("not a contradiction"), "different measure": _l("different measure"),
                "outdated release": _l("outdated release"), "duplicate": _l("duplicate"), "other": _l("other")}
ROLE_NAMES = {"admin": _l("admin"), "reviewer": _l("reviewer"), "viewer": _l("viewer")}
KIND_NAMES = {"news": _l("news"), "official": _l("official")}
# kinds of reasons (model) and of facts (release page); shown as the same words in English
REASON_KIND_NAMES = {"figure": _l("figure"), "date": _l("date"), "entity": _l("entity"), "negation": _l("negation"),
                     "percent": _l("percent"), "quantity": _l("quantity"), "money": _l("money"),
                     "year": _l("year"), "denial": _l("denial"), "reversal": _l("reversal"), "wording": _l("wording"),
                     "similarity": _l("similarity"), "reason": _l("reason")}
TERMS = {"status": STATUS_NAMES, "label": LABEL_NAMES, "action": ACTION_NAMES, "reason": REASON_NAMES,
         "role": ROLE_NAMES, "kind": KIND_NAMES, "reason_kind": REASON_KIND_NAMES}


def term(kind: str, value: Any) -> str:
    """The display name of a fixed ``value`` of ``kind`` (e.g. a status) in the current locale; unknown values
    (data from elsewhere) are shown as they are."""
    name = TERMS.get(kind, {}).get(value) if isinstance(value, str) else None
    return str(name) if name is not None else ("" if value is None else str(value))


def select_locale() -> str:
    """The user's stored choice, else the browser's best match, else English."""
    if current_user and current_user.is_authenticated:
        chosen = getattr(current_user, "locale", None)
        if chosen in LOCALES:
            return str(chosen)
    return request.accept_languages.best_match(LOCALES) or LOCALES[0]


def select_timezone() -> str:
    return str(current_app.config.get("DISPLAY_TIMEZONE") or DEFAULT_TIMEZONE)


def locale_code() -> str:
    locale = get_locale()
    return locale.language if locale is not None else LOCALES[0]


def _zone_label(value: datetime) -> str:
    name = select_timezone()
    if name.upper() in ("UTC", "ETC/UTC", "Z"):
        return "UTC"
    offset = value.utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset is not None else 0
    sign = "+" if minutes >= 0 else "−"
    hours, rest = divmod(abs(minutes), 60)
    return f"UTC{sign}{hours}" + (f":{rest:02d}" if rest else "")


def datetime_pattern(locale: Locale) -> str:
    """The locale's medium date with its short time (no seconds), joined the locale's way."""
    join = str(locale.datetime_formats["medium"])
    return join.replace("{1}", locale.date_formats["medium"].pattern).replace(
        "{0}", locale.time_formats["short"].pattern)


def format_when(value: datetime | None, empty: str = "—") -> str:
    """A stored (UTC) time in the display time zone and the current locale, with the zone named."""
    if value is None:
        return empty
    from flask_babel import format_datetime, to_user_timezone

    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    locale = get_locale() or Locale.parse(LOCALES[0])
    local = to_user_timezone(value)
    return f"{format_datetime(value, datetime_pattern(locale))} {_zone_label(local)}"


def format_day(value: date | datetime | None, form: str = "medium") -> str:
    """A calendar day (already a UTC day: not moved between zones) in the current locale."""
    if value is None:
        return "—"
    day = value.date() if isinstance(value, datetime) else value
    return format_date(day, form)


def format_short_day(value: date | datetime) -> str:
    """Day and month only (chart axes, column heads): "Jan 4" / "4 thg 1"."""
    from babel.dates import format_skeleton

    day = value.date() if isinstance(value, datetime) else value
    return format_skeleton("MMMd", day, locale=get_locale() or LOCALES[0])


def percent(score: float | None, empty: str = "") -> str:
    """0.9 -> "90%" (rounded to whole percent) in the current locale."""
    if score is None:
        return empty
    return format_percent(score)


def number(value: float | int | None) -> str:
    """A count or other number with the locale's separators (1,234 / 1.234)."""
    if value is None:
        return "—"
    return format_decimal(value)


def relative(value: datetime, now: datetime) -> str:
    """"30 minutes ago" / "in 3 hours" in the current locale."""
    return format_timedelta(value - now, threshold=1.5, add_direction=True)


class LocaleForm(FlaskForm):
    """The language switch: a locale, or "" to follow the browser again."""

    locale = StringField("Language", validators=[Optional(), AnyOf(LOCALES)])


@bp.route("/account/locale", methods=["POST"])
def set_locale() -> Any:
    from dashboard.auth import safe_next
    from dashboard.db import get_db

    form = LocaleForm()
    back = safe_next(request.form.get("next")) or url_for("matches.queue")
    if not form.validate_on_submit():
        flash(_("Choose English or Vietnamese."), "error")
        return redirect(back, 303)
    current_user.row.locale = form.locale.data or None
    get_db().commit()
    current_user.locale = current_user.row.locale
    from flask_babel import refresh

    refresh()  # the confirmation below is in the new language
    flash(_("Interface language saved."), "success")
    return redirect(back, 303)


def init_app(app: Flask) -> None:
    from babel.dates import get_timezone

    app.config.setdefault("DISPLAY_TIMEZONE", DEFAULT_TIMEZONE)
    try:  # a typo fails at start-up, not on the first page with a date
        get_timezone(str(app.config["DISPLAY_TIMEZONE"] or DEFAULT_TIMEZONE))
    except LookupError as exc:
        raise ValueError(f"DISPLAY_TIMEZONE {app.config['DISPLAY_TIMEZONE']!r} is not an IANA time zone name") from exc
    babel.init_app(app, default_locale=LOCALES[0], default_timezone=DEFAULT_TIMEZONE,
                   locale_selector=select_locale, timezone_selector=select_timezone)
    app.add_template_filter(percent, "percent")
    app.add_template_filter(format_when, "datetime")
    app.add_template_filter(format_day, "day")
    app.add_template_filter(format_short_day, "short_day")
    app.add_template_filter(number, "number")
    app.add_template_global(term, "term")
    app.add_template_global(locale_code, "locale_code")
    app.add_template_global(LOCALE_NAMES, "locale_names")
    app.register_blueprint(bp)
