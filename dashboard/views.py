"""Template filters and error pages shared by all blueprints."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Flask, render_template
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import Forbidden, HTTPException

from dashboard.db import get_db


def percent(score: float | None) -> str:
    if score is None:
        return ""
    return f"{score * 100:.0f}%"


def utc(value: datetime | None) -> str:
    if value is None:
        return "—"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _error(template: str, status: int, message: str | None = None) -> Any:
    return render_template(template, status=status, message=message), status


def init_app(app: Flask) -> None:
    app.add_template_filter(percent, "percent")
    app.add_template_filter(utc, "utc")

    @app.errorhandler(CSRFError)
    def _csrf_error(err: CSRFError) -> Any:
        return _error("error.html", 400, "The form expired or was not sent from this site. "
                                         "Reload the page and try again.")

    @app.errorhandler(400)
    def _bad_request(err: Exception) -> Any:
        return _error("error.html", 400, "The request was not understood.")

    @app.errorhandler(403)
    def _forbidden(err: HTTPException) -> Any:
        # require_role sets a description naming the roles; werkzeug's generic default is not shown
        custom = err.description if err.description != Forbidden.description else None
        return _error("403.html", 403, custom)

    @app.errorhandler(404)
    def _not_found(err: Exception) -> Any:
        return _error("404.html", 404)

    @app.errorhandler(405)
    def _not_allowed(err: Exception) -> Any:
        return _error("error.html", 405, "That method is not allowed here.")

    @app.errorhandler(413)
    def _too_large(err: Exception) -> Any:
        return _error("error.html", 413, "The request was too large.")

    @app.errorhandler(429)
    def _too_many(err: Exception) -> Any:
        return _error("429.html", 429)

    @app.errorhandler(500)
    def _server_error(err: Exception) -> Any:
        get_db().rollback()
        return _error("error.html", 500, "Something went wrong. The error was logged.")
