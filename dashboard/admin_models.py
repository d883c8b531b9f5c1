"""The model registry page (admins): versions with metrics and decisions, roll back, and "retrain now".

Retraining runs in one background thread of the web process (one at a time), so the request returns at once;
the page shows whether a run is in progress and how the last one ended.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from dashboard.auth import ADMIN_ROLES, require_role
from dashboard.db import get_db, state
from monitor.errors import MonitorError
from monitor.pipeline.feedback import live_precision
from monitor.pipeline.registry import list_versions, rollback

bp = Blueprint("models", __name__)
log = logging.getLogger(__name__)


class RetrainState:
    """What the page shows about the background retraining of this process."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running = False
        self.started_at: datetime | None = None
        self.finished_at: datetime | None = None
        self.outcome: str | None = None
        self.thread: threading.Thread | None = None


RETRAIN = RetrainState()


def _run_retrain(settings: Any, engine: Any, factory: Any, started_by: str) -> None:
    from monitor.pipeline.retrain import retrain
    from monitor.runtime import Runtime

    outcome: str
    try:
        result = retrain(Runtime(settings=settings, engine=engine, factory=factory), with_feedback=True)
        outcome = f"{result.version}: {result.decision}"
    except Exception as exc:  # noqa: BLE001 - reported on the page and in the log
        log.exception("retraining started by %s failed", started_by)
        outcome = f"failed: {exc}"
    with RETRAIN.lock:
        RETRAIN.running = False
        RETRAIN.finished_at = datetime.now(UTC)
        RETRAIN.outcome = outcome


def start_retrain(started_by: str) -> bool:
    """Start retraining in the background; False when a run is already in progress."""
    with RETRAIN.lock:
        if RETRAIN.running:
            return False
        RETRAIN.running, RETRAIN.started_at, RETRAIN.outcome = True, datetime.now(UTC), None
        st = state()
        RETRAIN.thread = threading.Thread(target=_run_retrain, name="retrain", daemon=True,
                                          args=(st.settings, st.engine, st.session_factory, started_by))
        RETRAIN.thread.start()
    return True


def _summary(metrics: dict[str, Any] | None) -> dict[str, Any]:
    metrics = metrics or {}
    cand = metrics.get("candidate") or {}
    cur = metrics.get("current") or {}
    fb, fnc = cand.get("feedback_slice"), cand.get("fnc1_hold_out")
    return {
        "feedback_f1": fb and fb.get("contradicts_f1"), "feedback_n": fb and fb.get("n"),
        "feedback_f1_current": (cur.get("feedback_slice") or {}).get("contradicts_f1"),
        "fnc_macro_f1": fnc and fnc.get("macro_f1"),
        "fnc_macro_f1_current": (cur.get("fnc1_hold_out") or {}).get("macro_f1"),
        "counts": metrics.get("counts") or {},
    }


@bp.route("/models")
@require_role(*ADMIN_ROLES)
def index() -> Any:
    db = get_db()
    versions = list_versions(db)
    live = {row["key"]: row for row in live_precision(db)["model_version"]}
    rows = [{"v": v, "m": _summary(v.metrics), "live": live.get(v.version)} for v in versions]
    with RETRAIN.lock:
        retrain_state = {"running": RETRAIN.running, "started_at": RETRAIN.started_at,
                         "finished_at": RETRAIN.finished_at, "outcome": RETRAIN.outcome}
    return render_template("models/index.html", rows=rows, retrain=retrain_state)


@bp.route("/models/rollback", methods=["POST"])
@require_role(*ADMIN_ROLES)
def roll_back() -> Any:
    version = (request.form.get("version") or "").strip()
    db = get_db()
    try:
        rollback(db, version, user=current_user.username)
    except MonitorError as exc:
        db.rollback()
        flash(str(exc), "error")
        return redirect(url_for("models.index"), 303)
    db.commit()
    flash(_("%(version)s is the active model again; the scheduler picks it up within a minute.", version=version),
          "success")
    return redirect(url_for("models.index"), 303)


@bp.route("/models/retrain", methods=["POST"])
@require_role(*ADMIN_ROLES)
def retrain_now() -> Any:
    if start_retrain(current_user.username):
        flash(_("Retraining started in the background; reload this page to see the result."), "info")
    else:
        flash(_("Retraining is already running."), "info")
    return redirect(url_for("models.index"), 303)
