"""process_new_items keeps the active statements' index between batches and rebuilds it when the set changes."""
from __future__ import annotations

from sqlalchemy import select, update

from learning_fixtures import T0, add_releases, feed, rt  # noqa: F401
from models import Judgement
from monitor.pipeline.process import clear_statement_cache, process_new_items
from monitor.storage.db import transaction
from monitor.storage.tables import Feed, Item, Release, Statement


class CountingChecker:
    """Builds an 'index' (the texts, counted) and judges nothing: only retrieval's inputs are observed."""

    version = "stub-1"

    def __init__(self) -> None:
        self.builds: list[list[str]] = []
        self.seen: list[object] = []

    def index(self, texts: list[str], key: object = None) -> list[str]:
        self.builds.append(list(texts))
        return list(texts)

    def check(self, claims: list[str], statements: object, top_k: int = 3) -> list[list[Judgement]]:
        self.seen.append(statements)
        return [[] for _ in claims]


def _new_item(rt, guid: str) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    with transaction(rt.factory) as s:
        outlet = s.scalar(select(Feed.id).where(Feed.kind == "news").limit(1))
        s.add(Item(feed_id=outlet, guid=guid, title=f"Police arrested 12 suspects ({guid})",
                   summary_text="Police arrested 12 suspects in 2023.", content_hash=guid))


def test_index_is_built_once_and_rebuilt_when_releases_change(rt) -> None:  # noqa: F811
    clear_statement_cache()
    checker = CountingChecker()
    with transaction(rt.factory) as s:
        add_releases(s)
        feed(s, "Wire")
    _new_item(rt, "a")
    process_new_items(rt.factory, checker, now=T0)
    _new_item(rt, "b")
    process_new_items(rt.factory, checker, now=T0)
    assert len(checker.builds) == 1 and len(checker.seen) == 2  # the second batch reuses the index
    with rt.factory() as s:
        active = list(s.scalars(select(Statement.text).join(Statement.release).where(Release.retired.is_(False))
                                .order_by(Statement.release_id, Statement.position)))
    assert checker.builds[0] == active

    # a new release: rebuilt with its statement
    with transaction(rt.factory) as s:
        r = Release(title="New", body="The ministry fined 40 companies.", content_hash="new", source="manual")
        s.add(r)
        s.flush()
        s.add(Statement(release_id=r.id, position=0, text="The ministry fined 40 companies.", start=0, end=32))
    _new_item(rt, "c")
    process_new_items(rt.factory, checker, now=T0)
    assert len(checker.builds) == 2 and "The ministry fined 40 companies." in checker.builds[-1]

    # retiring it: rebuilt without it
    with transaction(rt.factory) as s:
        s.execute(update(Release).where(Release.title == "New").values(retired=True))
    _new_item(rt, "d")
    process_new_items(rt.factory, checker, now=T0)
    assert len(checker.builds) == 3 and "The ministry fined 40 companies." not in checker.builds[-1]

    # another model version: rebuilt although the statements did not change
    checker.version = "stub-2"
    _new_item(rt, "e")
    process_new_items(rt.factory, checker, now=T0)
    assert len(checker.builds) == 4
    clear_statement_cache()
