"""Helpers that add feeds, items, claims, releases and matches with chosen attributes (review-side tests)."""

from __future__ import annotations

import hashlib
import itertools
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor.storage.tables import Claim, Feed, Item, Match, Release, Statement, User

_counter = itertools.count(1)


def get_feed(session: Session, name: str) -> Feed:
    feed = session.scalar(select(Feed).where(Feed.name == name))
    if feed is None:
        digest = hashlib.sha256(name.encode()).hexdigest()[:12]
        feed = Feed(url=f"https://{digest}.example.org/rss", name=name, kind="news")
        session.add(feed)
        session.flush()
    return feed


def get_statement(session: Session, release_title: str = "Release A", text: str = "GDP grew 5% in 2023.",
                  url: str | None = "https://gov.example.org/a") -> Statement:
    release = session.scalar(select(Release).where(Release.title == release_title))
    if release is None:
        release = Release(title=release_title, url=url, body=text, source="manual",
                          content_hash=hashlib.sha256(release_title.encode()).hexdigest())
        session.add(release)
        session.flush()
        session.add(Statement(release_id=release.id, position=0, text=text, start=0, end=len(text)))
        session.flush()
    return session.scalars(select(Statement).where(Statement.release_id == release.id)).first()


def add_item(session: Session, *, feed: str = "Outlet A", title: str = "", text: str = "",
             language: str | None = None, published_at: datetime | None = None,
             url: str | None = None) -> Item:
    n = next(_counter)
    item = Item(feed_id=get_feed(session, feed).id, guid=f"g-{n}", url=url or f"https://news.example.org/{n}",
                title=title, summary_text=text, content_text="", content_hash=f"c{n}", language=language,
                published_at=published_at)
    session.add(item)
    session.flush()
    return item


def add_match(session: Session, *, claim: str = "a claim", item: Item | None = None, feed: str = "Outlet A",
              title: str = "", text: str = "", language: str | None = None,
              published_at: datetime | None = None, release: str = "Release A", label: str = "contradicts",
              score: float = 0.5, status: str = "new", created_at: datetime | None = None,
              reviewed_at: datetime | None = None, model_version: str = "m", assignee_id: int | None = None,
              item_url: str | None = None) -> Match:
    if item is None:
        item = add_item(session, feed=feed, title=title, text=text, language=language, published_at=published_at,
                        url=item_url)
    statement = get_statement(session, release)
    row = Claim(item_id=item.id, position=next(_counter), source="body", text=claim, start=0, end=len(claim))
    session.add(row)
    session.flush()
    match = Match(claim_id=row.id, statement_id=statement.id, release_id=statement.release_id, label=label,
                  score=score, reasons=[], probabilities={}, model_version=model_version, status=status,
                  reviewed_at=reviewed_at, assignee_id=assignee_id)
    if created_at is not None:
        match.created_at = created_at
    session.add(match)
    session.flush()
    return match


def add_user(session: Session, username: str, role: str = "reviewer", active: bool = True) -> User:
    user = User(username=username, password_hash="x", role=role, active=active)
    session.add(user)
    session.flush()
    return user
