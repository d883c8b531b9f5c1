"""The model registry: every classifier version in ``model_versions`` with its card, metrics and decision.

Exactly one row is ``active`` at a time (the one the runtime loads); promoted-then-replaced versions are
``retired``; candidates that lost the comparison are ``rejected``. Model files live in ``<data_dir>/models/``
(the bundled model keeps its packaged path) and are checked against the stored SHA-256 before loading.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor.errors import ModelError, NotFoundError
from monitor.storage.tables import ModelVersion, utcnow

log = logging.getLogger(__name__)
STATUSES = ("candidate", "active", "retired", "rejected")


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def active_version(session: Session) -> ModelVersion | None:
    return session.scalar(select(ModelVersion).where(ModelVersion.status == "active")
                          .order_by(ModelVersion.promoted_at.desc(), ModelVersion.id.desc()).limit(1))


def get_version(session: Session, version: str) -> ModelVersion:
    row = session.scalar(select(ModelVersion).where(ModelVersion.version == version))
    if row is None:
        raise NotFoundError(f"no model version {version!r}; see `monitor models list`")
    return row


def list_versions(session: Session) -> list[ModelVersion]:
    return list(session.scalars(select(ModelVersion).order_by(ModelVersion.created_at.desc(),
                                                              ModelVersion.id.desc())))


def register(session: Session, *, version: str, path: str | Path, card: dict[str, Any], metrics: dict[str, Any],
             status: str, decision: str | None, now: datetime | None = None) -> ModelVersion:
    """Add one version (its file must exist: the SHA-256 is taken now)."""
    if status not in STATUSES:
        raise ValueError(f"unknown model status {status!r}")
    now = now or utcnow()
    row = ModelVersion(version=version, path=str(path), sha256=sha256_file(path), card=card, metrics=metrics,
                       status=status, decision=decision, created_at=now)
    session.add(row)
    if status == "active":
        _activate(session, row, now)
    session.flush()
    return row


def ensure_registered(session: Session, model: Any, path: str | Path, now: datetime | None = None) -> ModelVersion:
    """The registry row of the model now serving (registering the bundled model the first time)."""
    row = session.scalar(select(ModelVersion).where(ModelVersion.version == model.version))
    if row is not None:
        if active_version(session) is None:
            _activate(session, row, now or utcnow())
        return row
    status = "active" if active_version(session) is None else "retired"
    card = dict(getattr(model, "card", {}) or {})
    return register(session, version=model.version, path=path, card=card,
                    metrics={"card": card.get("metrics", {})}, status=status,
                    decision="registered as the model in service before retraining", now=now)


def _activate(session: Session, row: ModelVersion, now: datetime) -> None:
    for other in session.scalars(select(ModelVersion).where(ModelVersion.status == "active",
                                                           ModelVersion.id != row.id)):
        other.status = "retired"
    row.status = "active"
    row.promoted_at = now


def promote(session: Session, row: ModelVersion, now: datetime | None = None) -> ModelVersion:
    _activate(session, row, now or utcnow())
    session.flush()
    return row


def rollback(session: Session, version: str, now: datetime | None = None, *, user: str | None = None) -> ModelVersion:
    """Make an earlier, once-active version active again (its file must be intact)."""
    row = get_version(session, version)
    current = active_version(session)
    if current is not None and current.id == row.id:
        raise ModelError(f"{version} is already the active model")
    if row.promoted_at is None:
        raise ModelError(f"{version} was never promoted ({row.status}); only a previously active version "
                         "can be restored")
    check_file(row)
    now = now or utcnow()
    _activate(session, row, now)
    who = f" by {user}" if user else ""
    row.decision = (row.decision or "") + f"\nrestored as active by rollback{who} at {now:%Y-%m-%d %H:%M} UTC" + (
        f" (replacing {current.version})" if current else "")
    session.flush()
    return row


def check_file(row: ModelVersion) -> Path:
    path = Path(row.path)
    if not path.is_file():
        raise ModelError(f"the file of model {row.version} is missing: {path}")
    if sha256_file(path) != row.sha256:
        raise ModelError(f"the file of model {row.version} changed since it was registered (SHA-256 differs)")
    return path


def load_version(row: ModelVersion) -> Any:
    """Load a registered version (skops, trusted types only, SHA-256 checked)."""
    from models import load_model

    path = check_file(row)
    try:
        model = load_model(path)
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot load model {row.version}: {exc}") from exc
    model.version = row.version
    return model


def version_to_dict(row: ModelVersion) -> dict[str, Any]:
    return {
        "version": row.version, "status": row.status, "path": row.path, "sha256": row.sha256,
        "created_at": row.created_at.isoformat() if row.created_at else None,
        "promoted_at": row.promoted_at.isoformat() if row.promoted_at else None,
        "decision": row.decision, "metrics": row.metrics, "card": row.card,
    }
