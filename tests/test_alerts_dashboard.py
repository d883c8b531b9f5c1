"""Dashboard pages of issue 6: /alerts (admins and reviewers; delivery log for admins) and /models (admins)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from sqlalchemy import select

from dashboard_fixtures import ADMIN, REVIEWER, VIEWER, csrf_token_from, login
from models import load_model
from models.model import DEFAULT_MODEL_PATH
from monitor.pipeline import registry
from monitor.storage.tables import AlertDelivery, AlertRule, ModelVersion

T = datetime(2025, 1, 1, tzinfo=UTC)


def _token(client, path: str) -> str:  # type: ignore[no-untyped-def]
    return csrf_token_from(client.get(path).get_data(as_text=True))


def test_alerts_page_roles_and_rule_creation(client, session_factory) -> None:  # noqa: F811
    login(client, *VIEWER)
    assert client.get("/alerts").status_code == 403
    client.post("/logout", data={"csrf_token": _token(client, "/")})
    login(client, *REVIEWER)
    page = client.get("/alerts")
    assert page.status_code == 200 and "Delivery log" not in page.get_data(as_text=True)
    token = _token(client, "/alerts")
    bad = client.post("/alerts/add", data={"csrf_token": token, "name": "x", "channel": "webhook",
                                           "target": "http://10.1.2.3/hook", "min_score": "0.8",
                                           "window_minutes": "60", "max_per_hour": "5"})
    assert bad.status_code == 400 and "private or reserved address" in bad.get_data(as_text=True)
    ok = client.post("/alerts/add", data={"csrf_token": token, "name": "Press office", "channel": "email",
                                          "target": "press@gov.example", "min_score": "0.7",
                                          "window_minutes": "120", "max_per_hour": "5"})
    assert ok.status_code == 303
    with session_factory() as s:
        rule = s.scalar(select(AlertRule))
        assert (rule.name, rule.channel, rule.min_score, rule.window_minutes, rule.release_ids) == (
            "Press office", "email", 0.7, 120, None)
    assert client.post(f"/alerts/{rule.id}/toggle", data={"csrf_token": token}).status_code == 303
    with session_factory() as s:
        assert s.get(AlertRule, rule.id).enabled is False


def test_admin_sees_the_delivery_log(admin_client, session_factory) -> None:  # noqa: F811
    with session_factory() as s:
        rule = AlertRule(name="hook", channel="webhook", target="https://hooks.example.org/x", secret="s3cret")
        s.add(rule)
        s.flush()
        s.add(AlertDelivery(rule_id=rule.id, dedup_key="k:1", channel="webhook", target=rule.target,
                            payload={}, status="pending", attempts=2, last_error="webhook answered HTTP 500",
                            response_status=500, next_attempt_at=T, created_at=T))
        s.commit()
    html = admin_client.get("/alerts").get_data(as_text=True)
    assert "Delivery log" in html and "webhook answered HTTP 500" in html and "s3cret" in html


def test_models_page_rollback_and_background_retrain(admin_client, client, session_factory, monkeypatch) -> None:  # noqa: F811
    model = load_model()
    with session_factory() as s:
        old = registry.register(s, version="old-1", path=DEFAULT_MODEL_PATH, card={}, metrics={
            "candidate": {"feedback_slice": {"contradicts_f1": 0.8, "n": 10}},
            "current": {"feedback_slice": {"contradicts_f1": 0.7}}}, status="active", decision="promoted: test",
            now=T)
        registry.register(s, version=model.version, path=DEFAULT_MODEL_PATH, card={}, metrics={},
                          status="active", decision="promoted: newer", now=T)
        s.commit()
        assert old.status == "retired"
    html = admin_client.get("/models").get_data(as_text=True)
    assert "old-1" in html and "0.800 / 0.700" in html and "Roll back to this" in html
    token = _token(admin_client, "/models")
    assert admin_client.post("/models/rollback", data={"csrf_token": token, "version": "old-1"}).status_code == 303
    with session_factory() as s:
        assert s.scalar(select(ModelVersion.version).where(ModelVersion.status == "active")) == "old-1"
    refused = admin_client.post("/models/rollback", data={"csrf_token": token, "version": "nope"},
                                follow_redirects=True)
    assert "no model version" in refused.get_data(as_text=True)

    import dashboard.admin_models as admin_models

    calls = []

    def slow_retrain(runtime, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(runtime.settings)
        time.sleep(0.3)
        raise RuntimeError("no data in the test")

    monkeypatch.setattr("monitor.pipeline.retrain.retrain", slow_retrain)
    started = time.monotonic()
    answer = admin_client.post("/models/retrain", data={"csrf_token": token})
    assert answer.status_code == 303 and time.monotonic() - started < 0.3  # never blocks the request
    assert "Retraining is running" in admin_client.get("/models").get_data(as_text=True)
    admin_models.RETRAIN.thread.join(5)
    assert calls and "failed: no data in the test" in admin_client.get("/models").get_data(as_text=True)


def test_models_page_is_for_admins_only(client) -> None:  # noqa: F811
    login(client, *REVIEWER)
    assert client.get("/models").status_code == 403
    assert b"/alerts" in client.get("/").data and b'href="/models"' not in client.get("/").data
