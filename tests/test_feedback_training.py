"""Reviewer decisions become Feedback rows and training rows (latest decision per match wins)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from monitor.pipeline.feedback import (
    implied_label,
    live_precision,
    reason_category,
    split_by_time,
    training_rows,
)
from monitor.pipeline.process import uncertainty
from monitor.pipeline.review import review_match
from monitor.storage.db import transaction
from monitor.storage.tables import Feedback, Match
from learning_fixtures import T0, add_flag, add_releases, feed, reviewer, rt  # noqa: F401

PROBS = {"contradicts": 0.6, "supports": 0.1, "discusses": 0.25, "unrelated": 0.05}


def test_every_decision_is_a_feedback_row_and_the_latest_decision_wins(rt) -> None:  # noqa: F811
    with transaction(rt.factory) as s:
        st = add_releases(s)["Inflation report 2023"][0]
        user = reviewer(s)
        confirmed = add_flag(s, st, "Prices rose 9.75 percent in 2023.", probabilities=PROBS)
        dismissed = add_flag(s, st, "Prices rose 3.25 percent, officials said.", probabilities=PROBS)
        flipped = add_flag(s, st, "Prices rose 3 percent.", probabilities=PROBS)
        measure = add_flag(s, st, "Core prices rose 4.2 percent.", probabilities=PROBS)
        outdated = add_flag(s, st, "Prices rose 3.5 percent.", probabilities=PROBS)
        duplicate = add_flag(s, st, "Prices rose 9.75 percent in 2023!", probabilities=PROBS)
        escalated = add_flag(s, st, "Prices rose 1 percent.", probabilities=PROBS)
        t = T0
        for match, action, note in [
            (confirmed, "confirm", "clear figure error"),
            (dismissed, "dismiss", "not a contradiction"),
            (flipped, "confirm", None), (flipped, "reopen", None),
            (flipped, "dismiss", "not a contradiction: rounding"),
            (measure, "dismiss", "different measure: core vs headline"),
            (outdated, "dismiss", "outdated release"),
            (duplicate, "dismiss", "duplicate"),
            (escalated, "escalate", "ask the statistics office"),
        ]:
            t += timedelta(minutes=1)
            review_match(s, match.id, user, action, note, now=t)

    with rt.factory() as s:
        feedback = list(s.scalars(select(Feedback).order_by(Feedback.id)))
        # confirm, dismiss, confirm + dismiss (reopen removes nothing), measure, outdated, duplicate; no escalate
        assert len(feedback) == 7
        first = feedback[0]
        assert (first.claim_text, first.predicted_label, first.label, first.model_version, first.user_id) == (
            "Prices rose 9.75 percent in 2023.", "contradicts", "contradicts", "seed-model", user.id)
        assert first.statement_text.startswith("Consumer prices rose 3.25 percent")
        rows = {r.match_id: r for r in training_rows(s)}
    # not-contradicts decisions take the model's likeliest other label ("discusses" here)
    assert rows[confirmed.id].label == "contradicts"
    assert rows[dismissed.id].label == "discusses"
    assert rows[flipped.id].label == "discusses"  # the later dismiss supersedes the earlier confirm
    assert rows[measure.id].label == "discusses"  # different measure: training signal (not a contradiction)
    assert outdated.id not in rows and duplicate.id not in rows and escalated.id not in rows
    assert len(rows) == 4


def test_reason_mapping_and_time_split() -> None:
    match = Match(label="contradicts", score=0.6, probabilities=PROBS)
    assert implied_label(match, "confirm", None) == ("contradicts", True)
    assert implied_label(match, "dismiss", None) == ("discusses", True)
    assert implied_label(match, "dismiss", "outdated release") == ("contradicts", False)
    assert implied_label(match, "dismiss", "other: unsure") == ("contradicts", False)
    assert reason_category("Different measure: GDP vs GNI") == "different measure"
    assert reason_category("something else") is None

    from monitor.pipeline.feedback import FeedbackRow

    rows = [FeedbackRow(i, i, "c", "s", "contradicts", T0 + timedelta(days=9 - i), None, "m") for i in range(10)]
    train, held = split_by_time(rows)
    assert [r.feedback_id for r in held] == [1, 0]  # the two newest, whatever their ids
    assert max(r.created_at for r in train) < min(r.created_at for r in held)


def test_uncertainty_is_one_minus_the_margin() -> None:
    assert uncertainty({"contradicts": 0.6, "supports": 0.3, "discusses": 0.1}) == 0.7
    assert uncertainty({"contradicts": 1.0, "supports": 0.0}) == 0.0
    assert uncertainty({}) is None


def test_live_precision_per_release_outlet_and_model(rt) -> None:  # noqa: F811
    with transaction(rt.factory) as s:
        releases = add_releases(s)
        a, b = releases["Inflation report 2023"][0], releases["Police annual report"][0]
        user = reviewer(s)
        outlet_x, outlet_y = feed(s, "X"), feed(s, "Y")
        for statement, outlet, action in [(a, outlet_x, "confirm"), (a, outlet_x, "confirm"),
                                          (a, outlet_y, "dismiss"), (b, outlet_y, None)]:
            m = add_flag(s, statement, f"claim {statement.id} {action}", outlet=outlet)
            if action:
                review_match(s, m.id, user, action, None)
        add_flag(s, b, "not a flag", outlet=outlet_x, label="supports")
    with rt.factory() as s:
        result = live_precision(s)
    by_release = {r["name"]: r for r in result["release"]}
    assert by_release["Inflation report 2023"] == {
        "key": a.release_id, "name": "Inflation report 2023", "flags": 3, "confirmed": 2, "dismissed": 1,
        "precision": 0.6667, "confirmed_share": 0.6667}
    assert by_release["Police annual report"]["precision"] is None  # nothing decided yet
    by_outlet = {r["name"]: (r["flags"], r["confirmed"], r["dismissed"]) for r in result["outlet"]}
    assert by_outlet == {"X": (2, 2, 0), "Y": (2, 0, 1)}
    assert [(r["key"], r["flags"]) for r in result["model_version"]] == [("seed-model", 4)]


def test_queue_by_uncertainty_with_keyset_pages(rt) -> None:  # noqa: F811
    from monitor.queries import MatchFilter, list_matches_by_uncertainty

    with transaction(rt.factory) as s:
        st = add_releases(s)["Inflation report 2023"][0]
        made = {}
        for name, u in [("sure", 0.1), ("torn", 0.95), ("middle", 0.5), ("old", None), ("torn2", 0.95)]:
            m = add_flag(s, st, name)
            m.uncertainty = u
            made[name] = m.id
    with rt.factory() as s:
        order = [m.claim.text for m in list_matches_by_uncertainty(s, MatchFilter(status="new"))]
        assert order == ["torn2", "torn", "middle", "sure", "old"]
        first = list_matches_by_uncertainty(s, limit=2)
        rest = list_matches_by_uncertainty(s, before=(first[-1].uncertainty, first[-1].id))
        assert [m.claim.text for m in first + rest] == order
