"""Shared rows for the feedback, retraining and alert tests (imported explicitly by those test modules)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.config import Settings, load_settings
from monitor.pipeline.review import review_match
from monitor.runtime import Runtime, open_runtime
from monitor.storage.db import migrate, transaction
from monitor.storage.tables import Claim, Feed, Item, Match, Release, Statement, User

T0 = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)

RELEASES = {
    "Inflation report 2023": [
        "Consumer prices rose 3.25 percent in 2023 compared with 2022.",
        "The statistics office surveyed 45,000 households across 63 provinces.",
        "Core inflation increased 4.16 percent over the year.",
        "Food prices climbed 6.5 percent while fuel prices fell 11 percent.",
        "Exports reached 355 billion dollars in 2023.",
    ],
    "Police annual report": [
        "Police arrested 1,245 suspects in drug cases during 2023.",
        "Officers seized 820 kilograms of narcotics at the northern border.",
        "Traffic accidents killed 11,628 people, a decrease of 3 percent from 2022.",
        "The force recruited 2,300 new officers in 2023.",
        "Cybercrime reports rose to 4,750 cases last year.",
    ],
    "Health ministry update": [
        "Hospitals treated 87,000 dengue patients in the first half of 2024.",
        "The ministry vaccinated 1.2 million children against measles in 2023.",
        "There are 1,450 public hospitals operating nationwide.",
        "Health spending reached 5.1 percent of GDP in 2023.",
        "The ministry trained 9,800 nurses through the new programme.",
    ],
}


def wrong_figure(sentence: str) -> str:
    """The sentence with its first figure changed: a contradiction."""
    found = re.search(r"\d[\d,.]*\d|\d", sentence)
    assert found
    raw = found.group(0)
    number = float(raw.replace(",", ""))
    changed = f"{int(number * 3 + 7):,}" if "," in raw or number >= 100 else f"{number * 3 + 1:g}"
    return "Reports say " + sentence[: found.start()] + changed + sentence[found.end():]


def faithful(sentence: str) -> str:
    return "According to officials, " + sentence[0].lower() + sentence[1:]


def make_settings(tmp_path: Path, **overrides: object) -> Settings:
    url = f"sqlite:///{tmp_path / 'monitor.sqlite3'}"
    migrate(url)
    values: dict[str, object] = dict(
        data_dir=tmp_path / "var", database_url=url, secret_key="k", fetch_allow_hosts=["127.0.0.1"],
        training_data_dir=tmp_path / "no-data", retrain_synthetic_sentences=30, retrain_min_feedback_eval=4,
        retrain_eval_max_pairs=60, alert_backoff_seconds=60, alert_max_attempts=3, smtp_starttls=False,
        public_url="https://monitor.example.org")
    values.update(overrides)
    return load_settings(**values)


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[Runtime]:
    runtime = open_runtime(make_settings(tmp_path))
    yield runtime
    runtime.close()


def add_releases(session) -> dict[str, list[Statement]]:  # type: ignore[no-untyped-def]
    out: dict[str, list[Statement]] = {}
    for n, (title, sentences) in enumerate(RELEASES.items()):
        body = " ".join(sentences)
        release = Release(title=title, body=body, content_hash=f"r{n}", source="manual", url=f"https://gov.example/{n}")
        session.add(release)
        session.flush()
        pos = 0
        rows = []
        for i, text in enumerate(sentences):
            start = body.index(text, pos)
            pos = start + len(text)
            st = Statement(release_id=release.id, position=i, text=text, start=start, end=pos)
            session.add(st)
            rows.append(st)
        session.flush()
        out[title] = rows
    return out


def feed(session, name: str = "Daily News") -> Feed:  # type: ignore[no-untyped-def]
    row = Feed(url=f"https://{abs(hash(name)) % 10**8}.news.example/rss", name=name, kind="news")
    session.add(row)
    session.flush()
    return row


_n = [0]


def add_flag(session, statement: Statement, claim_text: str, *, outlet: Feed | None = None,  # type: ignore[no-untyped-def]
             label: str = "contradicts", score: float = 0.9, story_key: str | None = None,
             created_at: datetime = T0, probabilities: dict[str, float] | None = None) -> Match:
    _n[0] += 1
    outlet = outlet or feed(session, f"Outlet {_n[0]}")
    item = Item(feed_id=outlet.id, guid=f"g{_n[0]}", url=f"https://news.example/{_n[0]}", title=claim_text[:60],
                summary_text=claim_text, content_hash=f"h{_n[0]}", story_key=story_key, url_key=f"u{_n[0]}",
                checked_at=created_at)
    session.add(item)
    session.flush()
    claim = Claim(item_id=item.id, position=0, source="body", text=claim_text, start=0, end=len(claim_text))
    session.add(claim)
    session.flush()
    probabilities = probabilities or {"contradicts": score, "supports": (1 - score) * 0.6,
                                      "discusses": (1 - score) * 0.3, "unrelated": (1 - score) * 0.1}
    match = Match(claim_id=claim.id, statement_id=statement.id, release_id=statement.release_id, label=label,
                  score=score, probabilities=probabilities, reasons=[{"kind": "figure", "text": "figure differs"}],
                  model_version="seed-model", status="new", created_at=created_at)
    session.add(match)
    session.flush()
    return match


def reviewer(session) -> User:  # type: ignore[no-untyped-def]
    user = User(username=f"rev{_n[0]}", password_hash="x", role="reviewer")
    session.add(user)
    session.flush()
    return user


def seed_feedback(runtime: Runtime) -> list[int]:
    """Releases plus one confirmed contradiction and one dismissed faithful claim per statement, in time order."""
    ids = []
    with transaction(runtime.factory) as session:
        statements = [s for rows in add_releases(session).values() for s in rows]
        user = reviewer(session)
        t = T0
        for st in statements:
            for text, action, note in ((wrong_figure(st.text), "confirm", None),
                                       (faithful(st.text), "dismiss", "not a contradiction")):
                match = add_flag(session, st, text, created_at=t)
                t += timedelta(minutes=5)
                review_match(session, match.id, user, action, note, now=t)
                ids.append(match.id)
    return ids
