"""Signed webhook POSTs.

The body is compact JSON (keys sorted). Headers: ``X-Monitor-Signature: sha256=<hex HMAC-SHA256 of the body with the
rule's secret>``, ``X-Monitor-Timestamp: <unix seconds>`` (the same value is inside the signed body as
``timestamp``, so a receiver can refuse replays), and ``X-Monitor-Delivery: <delivery id>`` (stable across
retries: an idempotency key). The URL goes through the feed fetcher's SSRF guard at every attempt; redirects are
not followed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

import httpx

from monitor.errors import MonitorError

SIGNATURE_HEADER = "X-Monitor-Signature"
TIMESTAMP_HEADER = "X-Monitor-Timestamp"
DELIVERY_HEADER = "X-Monitor-Delivery"


def encode_body(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str | None) -> bool:
    """What a receiver does: constant-time comparison of the signature header with its own HMAC."""
    return bool(header) and hmac.compare_digest(sign(secret, body), header or "")


@dataclass(frozen=True)
class WebhookResponse:
    status: int


def post_webhook(url: str, payload: dict[str, Any], secret: str, *, timestamp: int, delivery_id: int,
                 timeout: float, allow_hosts: list[str] | tuple[str, ...] = (), user_agent: str = "") -> WebhookResponse:
    """POST the signed payload; raises MonitorError for a blocked URL, a network error or a non-2xx answer."""
    from monitor.alerts.rules import check_webhook_url

    try:
        check_webhook_url(url, allow_hosts)
    except MonitorError as exc:
        raise MonitorError(f"webhook URL refused: {exc}") from exc
    body = encode_body({**payload, "timestamp": timestamp, "delivery_id": delivery_id})
    headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(secret, body),
               TIMESTAMP_HEADER: str(timestamp), DELIVERY_HEADER: str(delivery_id)}
    if user_agent:
        headers["User-Agent"] = user_agent
    try:
        with httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as client:
            response = client.post(url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        raise MonitorError(f"webhook POST failed: {type(exc).__name__}: {exc}") from exc
    if not 200 <= response.status_code < 300:
        error = MonitorError(f"webhook answered HTTP {response.status_code}")
        error.status = response.status_code  # type: ignore[attr-defined]
        raise error
    return WebhookResponse(response.status_code)
