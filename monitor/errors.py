"""One exception tree for the monitor, so callers can catch by kind and show a plain message."""

from __future__ import annotations


class MonitorError(Exception):
    """Base of every error the monitor raises on purpose; ``str(err)`` is meant for staff."""


class ConfigError(MonitorError):
    """The settings are invalid or incomplete."""


class FetchError(MonitorError):
    """A feed could not be fetched (network, HTTP status, limits, policy)."""

    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None,
                 permanent: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after
        self.permanent = permanent


class BlockedURLError(FetchError):
    """The URL's scheme or resolved address is not allowed (SSRF guard)."""


class ParseError(MonitorError):
    """Fetched bytes are not a usable feed; nothing from them is stored."""


class StorageError(MonitorError):
    """The database refused an operation."""


class ModelError(MonitorError):
    """The classifier file is missing, untrusted or incompatible."""


class NotFoundError(MonitorError):
    """A requested record does not exist."""
