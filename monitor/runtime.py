"""The objects one process works with: settings, database engine and sessions, and the classifier."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from monitor.config import Settings
from monitor.errors import ModelError
from monitor.storage.db import make_engine, make_session_factory

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    """Built once per process by an entry point and passed to the use-case functions."""

    settings: Settings
    engine: Engine
    factory: sessionmaker[Session]
    _model: Any = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    _model_checked: float = field(default=0.0, repr=False)
    model_check_seconds: float = field(default=30.0, repr=False)

    @property
    def model(self) -> Any:
        """The classifier: the registry's active version, else the configured or bundled model.

        Loaded on first use (skops, trusted types only); every ``model_check_seconds`` the registry is asked
        again, so a promotion or rollback made by another process is picked up without a restart.
        """
        with self._lock:
            now = time.monotonic()
            if self._model is None or now - self._model_checked >= self.model_check_seconds:
                self._model_checked = now
                wanted = self._active_row()
                if self._model is None or (wanted is not None and wanted.version != self._model.version):
                    self._model = self._load(wanted)
            return self._model

    def reload_model(self) -> Any:
        """Forget the loaded classifier; the next use loads the active version."""
        with self._lock:
            self._model = None
            self._model_checked = 0.0
        return self.model

    @property
    def fallback_model_path(self) -> Path:
        from models.model import DEFAULT_MODEL_PATH

        return Path(self.settings.model_path) if self.settings.model_path else DEFAULT_MODEL_PATH

    def _active_row(self) -> Any:
        from monitor.pipeline.registry import active_version

        try:
            with self.factory() as session:
                row = active_version(session)
                if row is not None:
                    session.expunge(row)
                return row
        except SQLAlchemyError:  # no schema yet (before `monitor init`): the configured model serves
            return None

    def _load(self, row: Any) -> Any:
        if row is not None:
            from monitor.pipeline.registry import load_version

            try:
                return load_version(row)
            except ModelError as exc:
                log.error("active model %s unusable (%s); using %s", row.version, exc, self.fallback_model_path)
        from models import load_model

        try:
            return load_model(self.fallback_model_path)
        except (OSError, ValueError) as exc:
            raise ModelError(f"cannot load the classifier: {exc}") from exc

    def close(self) -> None:
        self.engine.dispose()


def open_runtime(settings: Settings) -> Runtime:
    settings.ensure_data_dir()
    engine = make_engine(settings.resolved_database_url, settings)
    return Runtime(settings=settings, engine=engine, factory=make_session_factory(engine))
