"""``/healthz``: JSON for load balancers and ops; no login, no details of errors."""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, jsonify
from sqlalchemy import text

from dashboard.db import state
from monitor import __version__
from monitor.storage.db import schema_is_current

bp = Blueprint("health", __name__)
log = logging.getLogger(__name__)


@bp.route("/healthz")
def healthz() -> Any:
    engine = state().engine
    body: dict[str, Any] = {"status": "ok", "version": __version__}
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        body["database"] = "ok"
        body["schema"] = "current" if schema_is_current(engine) else "outdated"
    except Exception:  # noqa: BLE001 - any failure means "not healthy"; the reason goes to the log only
        log.exception("health check: database unreachable")
        body.update(status="error", database="error")
        return jsonify(body), 503
    if body["schema"] != "current":
        body["status"] = "degraded"
        return jsonify(body), 503
    return jsonify(body)
