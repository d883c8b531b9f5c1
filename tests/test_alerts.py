"""Alerts: one per story, rate limits, SMTP and signed-webhook delivery, retries with backoff, no resend."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from datetime import timedelta
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy import select

from monitor.alerts.deliver import deliver_pending
from monitor.alerts.digest import daily_digest_job
from monitor.alerts.rules import create_rule, queue_alerts
from monitor.alerts.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from monitor.errors import BlockedURLError, MonitorError
from monitor.runtime import open_runtime
from monitor.storage.db import transaction
from monitor.storage.tables import AlertDelivery, User
from learning_fixtures import T0, add_flag, add_releases, feed, make_settings, rt  # noqa: F401


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Mailbox:
    def __init__(self) -> None:
        self.messages: list = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd API)
        self.messages.append((envelope.rcpt_tos, message_from_bytes(envelope.content)))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    controller_mod = pytest.importorskip("aiosmtpd.controller")
    box, port = Mailbox(), free_port()
    controller = controller_mod.Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    yield box, port
    controller.stop()


class Receiver:
    """A local webhook endpoint: answers the queued statuses (then 200) and records every request."""

    def __init__(self) -> None:
        self.statuses: list[int] = []
        self.requests: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((dict(self.headers), body))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.httpd.shutdown()
    r.httpd.server_close()


def flags(runtime, n: int = 1, *, story_key: str | None = None, outlets: list[str] | None = None,  # type: ignore[no-untyped-def]
          score: float = 0.9, release: str = "Police annual report") -> list[int]:
    with transaction(runtime.factory) as s:
        from monitor.storage.tables import Statement

        if s.scalar(select(Statement.id)) is None:
            add_releases(s)
        st = s.scalars(select(Statement).join(Statement.release).where(
            Statement.release.has(title=release)).order_by(Statement.id)).first()
        matches = []
        for i in range(n):
            outlet = feed(s, outlets[i]) if outlets else None
            matches.append(add_flag(s, st, f"Police arrested {9000 + i} suspects.", outlet=outlet,
                                    story_key=story_key, score=score, created_at=T0))
        queue_alerts(s, matches, now=T0)
        return [m.id for m in matches]


def deliveries(runtime) -> list[AlertDelivery]:  # type: ignore[no-untyped-def]
    with runtime.factory() as s:
        return list(s.scalars(select(AlertDelivery).order_by(AlertDelivery.id)))


def test_email_alert_reaches_a_local_smtp_server_once_even_after_a_restart(tmp_path: Path, smtp) -> None:
    box, port = smtp
    runtime = open_runtime(make_settings(tmp_path, smtp_host="127.0.0.1", smtp_port=port))
    with transaction(runtime.factory) as s:
        create_rule(s, name="press office", channel="email", target="press@gov.example, chief@gov.example")
    flags(runtime)
    assert deliver_pending(runtime, T0).sent == 1
    assert len(box.messages) == 1
    rcpt, msg = box.messages[0]
    assert sorted(rcpt) == ["chief@gov.example", "press@gov.example"]
    assert "Contradiction" in msg["Subject"] and "Police annual report" in msg["Subject"]
    text = msg.get_payload(decode=True).decode()
    assert "Police arrested 9000 suspects." in text and "https://monitor.example.org/matches/" in text
    [row] = deliveries(runtime)
    assert row.status == "sent" and row.attempts == 1 and row.sent_at == T0
    runtime.close()

    restarted = open_runtime(make_settings(tmp_path, smtp_host="127.0.0.1", smtp_port=port))
    assert deliver_pending(restarted, T0 + timedelta(hours=1)).sent == 0
    with transaction(restarted.factory) as s:  # the same flag queued again (a re-run) is a duplicate
        from monitor.storage.tables import Match

        again = queue_alerts(s, list(s.scalars(select(Match))), now=T0 + timedelta(minutes=5))
    assert again.queued == 0 and again.duplicates == 1
    assert deliver_pending(restarted, T0 + timedelta(hours=2)).sent == 0
    assert len(box.messages) == 1
    restarted.close()


def test_webhook_is_signed_and_the_receiver_verifies_it(rt, receiver: Receiver) -> None:  # noqa: F811
    with transaction(rt.factory) as s:
        rule = create_rule(s, name="newsroom bot", channel="webhook", target=receiver.url,
                           allow_hosts=["127.0.0.1"])
        secret = rule.secret
    assert secret and len(secret) >= 32
    [match_id] = flags(rt)
    assert deliver_pending(rt, T0).sent == 1
    [(headers, body)] = receiver.requests
    assert verify(secret, body, headers[SIGNATURE_HEADER])
    assert not verify("wrong-secret", body, headers[SIGNATURE_HEADER])
    assert not verify(secret, body + b" ", headers[SIGNATURE_HEADER])
    data = json.loads(body)
    assert data["match_id"] == match_id and data["event"] == "contradiction.flagged"
    assert str(data["timestamp"]) == headers[TIMESTAMP_HEADER] == str(int(T0.timestamp()))
    assert data["release"]["title"] == "Police annual report"
    assert deliveries(rt)[0].response_status == 200


def test_failing_webhook_is_retried_with_backoff_then_failed_and_logged(rt, receiver: Receiver) -> None:  # noqa: F811
    receiver.statuses = [500, 500, 500]
    with transaction(rt.factory) as s:
        create_rule(s, name="flaky", channel="webhook", target=receiver.url, allow_hosts=["127.0.0.1"])
    flags(rt)
    report = deliver_pending(rt, T0)
    assert (report.sent, report.retrying) == (0, 1)
    [row] = deliveries(rt)
    assert (row.status, row.attempts, row.response_status) == ("pending", 1, 500)
    assert row.last_error == "webhook answered HTTP 500"
    assert row.next_attempt_at == T0 + timedelta(seconds=60)
    assert deliver_pending(rt, T0 + timedelta(seconds=59)).retrying == 0  # not due yet
    assert len(receiver.requests) == 1
    deliver_pending(rt, T0 + timedelta(seconds=60))
    [row] = deliveries(rt)
    assert row.attempts == 2 and row.next_attempt_at == T0 + timedelta(seconds=60 + 120)  # doubled
    assert deliver_pending(rt, T0 + timedelta(seconds=180)).failed == 1  # alert_max_attempts = 3
    [row] = deliveries(rt)
    assert (row.status, row.attempts, row.next_attempt_at) == ("failed", 3, None)
    assert len(receiver.requests) == 3
    assert deliver_pending(rt, T0 + timedelta(days=1)).failed == 0 and len(receiver.requests) == 3


def test_a_retry_succeeds(rt, receiver: Receiver) -> None:  # noqa: F811
    receiver.statuses = [503]
    with transaction(rt.factory) as s:
        create_rule(s, name="flaky", channel="webhook", target=receiver.url, allow_hosts=["127.0.0.1"])
    flags(rt)
    deliver_pending(rt, T0)
    assert deliver_pending(rt, T0 + timedelta(minutes=1)).sent == 1
    [row] = deliveries(rt)
    assert (row.status, row.attempts, row.last_error) == ("sent", 2, None)
    first, second = (json.loads(body) for _, body in receiver.requests)
    assert first["delivery_id"] == second["delivery_id"]  # an idempotency key for the receiver


def test_two_outlets_with_the_same_story_give_one_alert(rt) -> None:  # noqa: F811
    with transaction(rt.factory) as s:
        create_rule(s, name="all", channel="email", target="a@gov.example", window_minutes=60)
    flags(rt, 2, story_key="same-story", outlets=["Outlet A", "Outlet B"])
    assert len(deliveries(rt)) == 1
    flags(rt, 1, story_key="same-story", release="Inflation report 2023")  # another release: its own alert
    assert len(deliveries(rt)) == 2
    with transaction(rt.factory) as s:  # after the window, the story may alert again
        from monitor.storage.tables import Match, Statement

        st = s.scalars(select(Statement).where(Statement.release.has(title="Police annual report"))).first()
        late = add_flag(s, st, "Police arrested 7 suspects.", story_key="same-story", created_at=T0)
        assert queue_alerts(s, [late], now=T0 + timedelta(minutes=30)).duplicates == 1
        assert queue_alerts(s, [late], now=T0 + timedelta(minutes=61)).queued == 1
        assert s.get(Match, late.id) is not None


def test_rule_filters_and_rate_limit(rt) -> None:  # noqa: F811
    with transaction(rt.factory) as s:
        create_rule(s, name="limited", channel="email", target="a@gov.example", max_per_hour=2)
        create_rule(s, name="picky", channel="email", target="b@gov.example", min_score=0.95)
    flags(rt, 4, score=0.9)  # four different stories
    rows = deliveries(rt)
    assert [r.status for r in rows] == ["pending", "pending", "suppressed", "suppressed"]
    assert "rate limit" in rows[2].last_error
    assert deliver_pending(rt, T0).sent == 0  # no SMTP configured: retried later, never "sent"
    with rt.factory() as s:
        assert s.scalar(select(AlertDelivery).where(AlertDelivery.status == "suppressed").limit(1)).attempts == 0


def test_webhook_targets_go_through_the_ssrf_guard(rt) -> None:  # noqa: F811
    with transaction(rt.factory) as s:
        with pytest.raises(BlockedURLError):
            create_rule(s, name="x", channel="webhook", target="http://10.0.0.5/hook")
        with pytest.raises(BlockedURLError):
            create_rule(s, name="x", channel="webhook", target="ftp://example.org/hook")
        with pytest.raises(MonitorError, match="not an email address"):
            create_rule(s, name="x", channel="email", target="nobody")


def test_new_flags_from_the_pipeline_queue_alerts_once(rt) -> None:  # noqa: F811
    from models import Judgement, Reason
    from monitor.pipeline.process import process_new_items
    from monitor.storage.tables import Item, Match

    class Flagger:
        version = "stub"

        def check(self, claims, statements, top_k=3):  # type: ignore[no-untyped-def]
            probs = {"contradicts": 0.7, "supports": 0.2, "discusses": 0.05, "unrelated": 0.05}
            figure = Reason("figure", "release says 1,200 suspects, claim says 9,999", (16, 21), (0, 5))
            return [[Judgement(0, "contradicts", 0.7, probs, [figure])] for _ in claims]

    with transaction(rt.factory) as s:
        add_releases(s)
        create_rule(s, name="all", channel="email", target="a@gov.example", min_score=0.5)
        outlet = feed(s, "Wire")
        s.add(Item(feed_id=outlet.id, guid="x1", title="Police arrested 9,999 suspects in 2023",
                   summary_text="Police arrested 9,999 suspects in drug cases during 2023.", content_hash="c"))
    process_new_items(rt.factory, Flagger(), threshold=0.5, now=T0)
    with rt.factory() as s:
        matches = list(s.scalars(select(Match)))
        assert matches and all(m.uncertainty == pytest.approx(0.5) for m in matches)
        s.execute(Item.__table__.update().values(checked_at=None))
        s.commit()
    assert len(deliveries(rt)) == 1  # title and body claims are one story
    process_new_items(rt.factory, Flagger(), threshold=0.5, now=T0 + timedelta(minutes=1))
    assert len(deliveries(rt)) == 1


def test_daily_digest_once_per_user_and_day(tmp_path: Path, smtp) -> None:
    box, port = smtp
    runtime = open_runtime(make_settings(tmp_path, smtp_host="127.0.0.1", smtp_port=port))
    with transaction(runtime.factory) as s:
        s.add_all([User(username="ann", password_hash="x", email="ann@gov.example", daily_digest=True),
                   User(username="bob", password_hash="x", email="bob@gov.example", daily_digest=False),
                   User(username="cy", password_hash="x", email=None, daily_digest=True)])
    assert daily_digest_job(runtime, T0) == 0  # nothing to report: no email
    flags(runtime, 2)
    assert daily_digest_job(runtime, T0 + timedelta(hours=1)) == 1
    assert [rcpt for rcpt, _ in box.messages] == [["ann@gov.example"]]
    body = box.messages[0][1].get_payload(decode=True).decode()
    assert "2 new contradiction flag(s)" in body and "Police arrested 9000 suspects." in body
    runtime.close()
    again = open_runtime(make_settings(tmp_path, smtp_host="127.0.0.1", smtp_port=port))
    assert daily_digest_job(again, T0 + timedelta(hours=5)) == 0  # same day, after a restart
    assert len(box.messages) == 1
    assert daily_digest_job(again, T0 + timedelta(days=1)) == 1
    again.close()
