"""User accounts: argon2 password hashing, creation and verification (shared by CLI and dashboard)."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor.errors import MonitorError, NotFoundError
from monitor.storage.tables import ApiToken, User

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


# -- roles, enable/disable --------------------------------------------------------------------------------

def get_user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFoundError(f"user {user_id} does not exist")
    return user


def set_role(session: Session, user_id: int, role: str) -> User:
    if role not in ROLES:
        raise MonitorError(f"unknown role {role!r}; choose one of {', '.join(ROLES)}")
    user = get_user(session, user_id)
    user.role = role
    return user


def set_active(session: Session, user_id: int, active: bool) -> User:
    """Enable or disable an account; a disabled account can neither sign in nor use its API tokens."""
    user = get_user(session, user_id)
    user.active = active
    return user


# -- API tokens ---------------------------------------------------------------------------------------------

TOKEN_PREFIX = "smt_"
TOKEN_NAME_MAX = 100
_LAST_USED_RESOLUTION = timedelta(minutes=1)  # do not write the row on every request


def token_digest(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()


def create_api_token(session: Session, user: User, name: str) -> tuple[ApiToken, str]:
    """A new token for ``user``; returns ``(row, plaintext)``. Only the SHA-256 of the plaintext is stored,
    so the plaintext must be shown to the user now and can never be shown again."""
    name = " ".join((name or "").split())
    if not name:
        raise MonitorError("give the token a name (for example the script that will use it)")
    if len(name) > TOKEN_NAME_MAX:
        raise MonitorError(f"token names have at most {TOKEN_NAME_MAX} characters")
    plaintext = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(user_id=user.id, name=name, token_hash=token_digest(plaintext))
    session.add(token)
    session.flush()
    return token, plaintext


def user_for_token(session: Session, plaintext: str, now: datetime | None = None) -> User | None:
    """The active user owning this unrevoked token, or None; records when the token was last used."""
    if not plaintext or len(plaintext) > 200:
        return None
    token = session.scalar(select(ApiToken).where(ApiToken.token_hash == token_digest(plaintext)))
    if token is None or token.revoked_at is not None:
        return None
    user = session.get(User, token.user_id)
    if user is None or not user.active:
        return None
    now = now or datetime.now(UTC)
    if token.last_used_at is None or now - token.last_used_at >= _LAST_USED_RESOLUTION:
        token.last_used_at = now
    return user


def list_api_tokens(session: Session, user_id: int, *, include_revoked: bool = True) -> list[ApiToken]:
    query = select(ApiToken).where(ApiToken.user_id == user_id)
    if not include_revoked:
        query = query.where(ApiToken.revoked_at.is_(None))
    return list(session.scalars(query.order_by(ApiToken.id.desc())))


def revoke_api_token(session: Session, token_id: int, *, user_id: int | None = None) -> ApiToken:
    """Revoke a token (kept for the record). With ``user_id``, only a token of that user is found."""
    token = session.get(ApiToken, token_id)
    if token is None or (user_id is not None and token.user_id != user_id):
        raise NotFoundError(f"API token {token_id} does not exist")
    if token.revoked_at is None:
        token.revoked_at = datetime.now(UTC)
    return token
