"""The objects one process works with: settings, database engine and sessions, and the classifier."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from monitor.config import Settings
from monitor.errors import ModelError
from monitor.storage.db import make_engine, make_session_factory


@dataclass
class Runtime:
    """Built once per process by an entry point and passed to the use-case functions."""

    settings: Settings
    engine: Engine
    factory: sessionmaker[Session]
    _model: Any = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def model(self) -> Any:
        """The classifier, loaded on first use (skops, trusted types only)."""
        with self._lock:
            if self._model is None:
                from models import load_model

                try:
                    self._model = load_model(self.settings.model_path)
                except (OSError, ValueError) as exc:
                    raise ModelError(f"cannot load the classifier: {exc}") from exc
            return self._model

    def close(self) -> None:
        self.engine.dispose()


def open_runtime(settings: Settings) -> Runtime:
    settings.ensure_data_dir()
    engine = make_engine(settings.resolved_database_url)
    return Runtime(settings=settings, engine=engine, factory=make_session_factory(engine))
