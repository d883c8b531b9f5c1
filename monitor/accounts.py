"""User accounts: argon2 password hashing, creation and verification (shared by CLI and dashboard)."""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor.errors import MonitorError
from monitor.storage.tables import User

ROLES = ("admin", "reviewer", "viewer")
_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def generate_password() -> str:
    """A random password that is easy to copy from a terminal."""
    return secrets.token_urlsafe(12)


def create_user(session: Session, username: str, password: str, role: str = "reviewer") -> User:
    """Add an account; raises MonitorError for a bad role, a short password or a taken name."""
    username = username.strip()
    if role not in ROLES:
        raise MonitorError(f"unknown role {role!r}; choose one of {', '.join(ROLES)}")
    if not username:
        raise MonitorError("a username is required")
    if len(password) < 8:
        raise MonitorError("passwords must have at least 8 characters")
    if session.scalar(select(User).where(User.username == username)) is not None:
        raise MonitorError(f"user {username!r} already exists")
    user = User(username=username, password_hash=hash_password(password), role=role, active=True)
    session.add(user)
    session.flush()
    return user


def authenticate(session: Session, username: str, password: str) -> User | None:
    """The active user with these credentials, or None. Rehashes when argon2 parameters changed."""
    user = session.scalar(select(User).where(User.username == username.strip()))
    if user is None or not user.active:
        _hasher.hash(password)  # spend the same time as a real check, so names cannot be probed by timing
        return None
    try:
        _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return user
