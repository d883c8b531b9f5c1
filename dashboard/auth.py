"""Login, logout, the signed-in user and role checks.

Every endpoint needs a signed-in user except those in ``PUBLIC_ENDPOINTS`` (checked once, before each
request, so a new view cannot forget it). Failed logins are limited per (username, client address).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user
from werkzeug.wrappers import Response

from dashboard.db import get_db
from dashboard.forms import LoginForm
from dashboard.ratelimit import FailureLimiter
from monitor.accounts import authenticate
from monitor.storage.tables import User

bp = Blueprint("auth", __name__)
login_manager = LoginManager()
login_manager.login_view = "auth.login"
login_manager.login_message = _l("Please sign in to continue.")
login_manager.localize_callback = str  # the lazy message as text in the browser's language (the session stores text)
login_manager.login_message_category = "info"

PUBLIC_ENDPOINTS = frozenset({"auth.login", "health.healthz", "static"})
# Blueprints that authenticate each request themselves (the JSON API: bearer tokens, never the session).
TOKEN_BLUEPRINTS = frozenset({"api"})
REVIEW_ROLES = frozenset({"admin", "reviewer"})
MANAGE_ROLES = REVIEW_ROLES  # who may add, edit and pause feeds and releases
ADMIN_ROLES = frozenset({"admin"})

F = TypeVar("F", bound=Callable[..., Any])


class SignedInUser(UserMixin):
    """Flask-Login's view of a ``User`` row (the row itself is in ``.row``, bound to the request session)."""

    def __init__(self, row: User) -> None:
        self.row = row
        self.id = row.id
        self.username = row.username
        self.role = row.role
        self.locale = row.locale  # interface language; None: the browser's (dashboard.i18n)

    @property
    def is_active(self) -> bool:
        return bool(self.row.active)

    @property
    def can_review(self) -> bool:
        return self.role in REVIEW_ROLES


@login_manager.user_loader
def _load_user(user_id: str) -> SignedInUser | None:
    try:
        row = get_db().get(User, int(user_id))
    except ValueError:
        return None
    if row is None or not row.active:
        return None
    return SignedInUser(row)


def _require_login() -> Response | None:
    if request.blueprint in TOKEN_BLUEPRINTS:
        return None  # checked by the blueprint's own before_request
    if request.endpoint in PUBLIC_ENDPOINTS or current_user.is_authenticated:
        return None
    return login_manager.unauthorized()  # type: ignore[no-any-return]


def forbidden_message(roles: tuple[str, ...] | frozenset[str], role: str | None) -> str:
    """What the 403 page says: which roles the page needs and which one the account has."""
    from dashboard.i18n import term

    names = [term("role", r) for r in sorted(roles)]
    needed = names[0] if len(names) == 1 else _("%(some)s or %(last)s", some=", ".join(names[:-1]), last=names[-1])
    message = _("This page or action needs the %(roles)s role.", roles=needed)
    if role:
        message += " " + _("Your account has the %(role)s role.", role=term("role", role))
    return message + " " + _("Ask an administrator if you need access.")


def require_role(*roles: str) -> Callable[[F], F]:
    """403 unless the signed-in user has one of ``roles`` (the page says which roles it needs)."""

    def decorator(view: F) -> F:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if not current_user.is_authenticated or current_user.role not in roles:
                role = current_user.role if current_user.is_authenticated else None
                abort(403, description=forbidden_message(roles, role))
            return view(*args, **kwargs)

        return wrapped  # type: ignore[return-value]

    return decorator


def init_app(app: Flask) -> None:
    login_manager.init_app(app)
    app.extensions["login_limiter"] = FailureLimiter(app.config["LOGIN_MAX_FAILURES"],
                                                     app.config["LOGIN_WINDOW_SECONDS"])
    app.before_request(_require_login)


def _limiter() -> FailureLimiter:
    return current_app.extensions["login_limiter"]  # type: ignore[no-any-return]


def safe_next(target: str | None) -> str | None:
    """``target`` when it is a path on this site, else None (no open redirects)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    if any(ord(ch) < 32 for ch in target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    if current_user.is_authenticated:
        return redirect(url_for("matches.queue"))
    form = LoginForm()
    if form.validate_on_submit():
        username = (form.username.data or "").strip()
        key = (username.casefold(), request.remote_addr or "")
        limiter = _limiter()
        if limiter.blocked(key):
            return render_template("429.html"), 429, {"Retry-After": str(limiter.retry_after(key))}
        db = get_db()
        user = authenticate(db, username, form.password.data or "")
        if user is None:
            limiter.fail(key)
            flash(_("Invalid username or password."), "error")
        else:
            db.commit()  # authenticate may have upgraded the password hash
            limiter.reset(key)
            next_url = safe_next(request.args.get("next"))
            session.clear()  # a fresh session on sign-in (no fixation)
            login_user(SignedInUser(user))
            return redirect(next_url or url_for("matches.queue"))
    return render_template("login.html", form=form)


@bp.route("/logout", methods=["POST"])
def logout() -> Any:
    logout_user()
    session.clear()
    flash(_("You have been signed out."), "info")
    return redirect(url_for("auth.login"))
