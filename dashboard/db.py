"""The dashboard's engine and its request-scoped SQLAlchemy session.

``init_app`` builds one engine and session factory per app and keeps them in ``app.extensions["monitor"]``.
``get_db()`` opens a session on first use in a request (kept on ``flask.g``); it is rolled back if left
uncommitted and closed when the app context ends. Views commit explicitly after a write.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, current_app, g
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from monitor.config import Settings
from monitor.storage.db import make_engine, make_session_factory


@dataclass(frozen=True)
class MonitorState:
    """What the dashboard keeps per app: settings, engine and session factory."""

    settings: Settings
    engine: Engine
    session_factory: sessionmaker[Session]


def init_app(app: Flask, settings: Settings) -> None:
    engine = make_engine(settings.resolved_database_url)
    app.extensions["monitor"] = MonitorState(settings, engine, make_session_factory(engine))
    app.teardown_appcontext(close_db)


def state() -> MonitorState:
    return current_app.extensions["monitor"]  # type: ignore[no-any-return]


def get_db() -> Session:
    """The session of the current request (created on first use)."""
    if "db_session" not in g:
        g.db_session = state().session_factory()
    return g.db_session  # type: ignore[no-any-return]


def close_db(_exc: BaseException | None = None) -> None:
    session: Session | None = g.pop("db_session", None)
    if session is not None:
        session.rollback()  # no-op after a commit; drops anything a failed request left behind
        session.close()
