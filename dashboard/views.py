"""Error pages shared by all blueprints (the template filters are in ``dashboard.i18n``)."""

from __future__ import annotations

from typing import Any

from flask import Flask, render_template
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import Forbidden, HTTPException

from dashboard.db import get_db


def _error(template: str, status: int, message: str | None = None) -> Any:
    return render_template(template, status=status, message=message), status


def init_app(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def _csrf_error(err: CSRFError) -> Any:
        return _error("error.html", 400, _("The form expired or was not sent from this site. "
                                           "Reload the page and try again."))

    @app.errorhandler(400)
    def _bad_request(err: Exception) -> Any:
        return _error("error.html", 400, _("The request was not understood."))

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
        return _error("error.html", 405, _("That method is not allowed here."))

    @app.errorhandler(413)
    def _too_large(err: Exception) -> Any:
        return _error("error.html", 413, _("The request was too large."))

    @app.errorhandler(429)
    def _too_many(err: Exception) -> Any:
        return _error("429.html", 429)

    @app.errorhandler(500)
    def _server_error(err: Exception) -> Any:
        get_db().rollback()
        return _error("error.html", 500, _("Something went wrong. The error was logged."))
