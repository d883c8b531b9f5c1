"""Flask review dashboard: press officers read flagged matches and confirm, dismiss or reopen them.

``create_app(settings)`` is the only entry point; it returns a plain WSGI app, so the CLI serves it with
``waitress.serve(create_app(settings), host=..., port=...)``. The app never starts the scheduler and never
changes the schema (run ``migrate`` first).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask
from flask_wtf.csrf import CSRFProtect

from monitor.config import Settings, load_settings

csrf = CSRFProtect()


def create_app(settings: Settings | None = None, config: Mapping[str, Any] | None = None) -> Flask:
    """Build the dashboard for ``settings`` (default: ``load_settings()``); ``config`` overrides Flask config."""
    from dashboard import auth, db, health, i18n, matches, security, views

    settings = settings or load_settings()
    app = Flask(__name__)
    app.jinja_env.trim_blocks = True
    app.jinja_env.lstrip_blocks = True
    app.config.update(
        SECRET_KEY=settings.resolved_secret_key(),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.session_cookie_secure,
        SESSION_COOKIE_NAME="monitor_session",
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SAMESITE="Lax",
        REMEMBER_COOKIE_SECURE=settings.session_cookie_secure,
        MAX_CONTENT_LENGTH=64 * 1024,
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the session (a review tab stays open for hours)
        QUEUE_PAGE_SIZE=50,
        LOGIN_MAX_FAILURES=10,
        LOGIN_WINDOW_SECONDS=15 * 60,
        DISPLAY_TIMEZONE=settings.display_timezone,  # times are stored in UTC and shown in this zone (named)
    )
    if config:
        app.config.update(config)

    db.init_app(app, settings)
    csrf.init_app(app)
    auth.init_app(app)
    i18n.init_app(app)  # English / Vietnamese (user preference, then the browser), locale-aware dates and numbers
    security.init_app(app)
    views.init_app(app)

    app.register_blueprint(auth.bp)
    app.register_blueprint(matches.bp)
    app.register_blueprint(health.bp)
    from dashboard import exports, overview  # review-side pages (overview charts, queue exports)

    app.register_blueprint(overview.bp)
    app.register_blueprint(exports.bp)
    from dashboard import admin_feeds, admin_releases, admin_users, api  # feeds, releases, users, JSON API

    app.register_blueprint(admin_feeds.bp)
    app.register_blueprint(admin_releases.bp)
    app.register_blueprint(admin_users.bp)
    app.register_blueprint(api.bp)
    from dashboard import admin_alerts, admin_models  # model registry, alert rules (issue 6)

    app.register_blueprint(admin_models.bp)
    app.register_blueprint(admin_alerts.bp)
    csrf.exempt(api.bp)  # token-authenticated and read-only; the session cookie is never accepted there
    return app


__all__ = ["create_app", "csrf"]
