"""The review queue's text search (``MatchFilter.q``) on both backends, with the indexes of migration 0007.

SQLite narrows with the FTS5 trigram table ``search_fts`` (kept in step by triggers) and re-checks each candidate
with the exact case-folded substring test; PostgreSQL uses ILIKE semi-joins served by ``pg_trgm`` GIN indexes.
Either way the answer must be the same as a plain substring search: these tests pin it down.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import delete, event, select, text, update
from sqlalchemy.orm import Session

from dashboard_rows import add_item, add_match
from monitor.queries import MatchFilter, list_matches, neighbours
from monitor.storage.db import make_engine, make_session_factory
from monitor.storage.tables import Claim, Item, Match


@pytest.fixture
def session(database_url: str) -> Iterator[Session]:
    engine = make_engine(database_url)
    with make_session_factory(engine)() as s:
        yield s
    engine.dispose()


def _ids(session: Session, q: str, **kw: object) -> list[int]:
    return sorted(m.id for m in list_matches(session, MatchFilter(status=None, label=None, q=q, **kw)))


def test_substring_case_and_diacritics_in_every_searched_field(session: Session) -> None:
    in_claim = add_match(session, claim="Tòa án mở lại VỤ ÁN năm 2020")
    in_title = add_match(session, claim="x1", title="Vụ án tham nhũng lớn nhất")
    in_summary = add_match(session, claim="x2", text="Hồ sơ vụ án được chuyển")
    content_item = add_item(session, title="t")
    content_item.content_text = "… the vụ án files …"
    in_content = add_match(session, claim="x3", item=content_item)
    no_accent = add_match(session, claim="vu an without diacritics")
    session.commit()
    expected = sorted([in_claim.id, in_title.id, in_summary.id, in_content.id])
    assert _ids(session, "vụ án") == expected
    assert _ids(session, "VỤ ÁN") == expected
    assert _ids(session, "ụ á") == expected  # a substring across a word boundary, not whole words
    assert _ids(session, "vu an") == [no_accent.id]  # diacritics matter
    assert _ids(session, "tham nhũng") == [in_title.id]


def test_wildcards_quotes_and_query_syntax_are_literal(session: Session) -> None:
    percent = add_match(session, claim="Growth was 50% in 2023")
    underscore = add_match(session, claim="see file_name.csv")
    quoted = add_match(session, claim='He said "no" AND then NEAR(x) left*')
    add_match(session, claim="this has neither")
    session.commit()
    assert _ids(session, "50%") == [percent.id]
    assert _ids(session, "%") == [percent.id]  # shorter than a trigram: the scan, still literal
    assert _ids(session, "h_s") == []
    assert _ids(session, "file_name") == [underscore.id]
    assert _ids(session, '"no" AND') == [quoted.id]
    assert _ids(session, "NEAR(x)") == [quoted.id]
    assert _ids(session, "left*") == [quoted.id]
    assert _ids(session, "left**") == []
    assert _ids(session, "nothing like this anywhere") == []


def test_edits_and_deletes_reach_the_index(session: Session) -> None:
    match = add_match(session, claim="plain claim", title="Old headline")
    other = add_match(session, claim="second claim", title="Other headline")
    session.commit()
    assert _ids(session, "headline") == sorted([match.id, other.id])
    item_id = session.get(Claim, match.claim_id).item_id
    session.execute(update(Item).where(Item.id == item_id).values(title="Renamed story", summary_text="hydropower"))
    session.commit()
    assert _ids(session, "Old headline") == []
    assert _ids(session, "renamed") == [match.id]
    assert _ids(session, "HYDROPOWER") == [match.id]
    session.execute(update(Claim).where(Claim.id == other.claim_id).values(text="edited claim words"))
    session.commit()
    assert _ids(session, "second claim") == []
    assert _ids(session, "edited claim") == [other.id]
    session.execute(delete(Item).where(Item.id == item_id))  # cascades to its claim and match
    session.commit()
    assert _ids(session, "renamed") == []
    assert session.scalar(select(Match.id).where(Match.id == match.id)) is None


def test_search_combines_with_filters_keyset_and_neighbours(session: Session) -> None:
    hits = [add_match(session, claim=f"inflation claim {n}", score=0.9 - n / 100, label=label)
            for n, label in enumerate(["supports", "contradicts", "supports", "supports"])]
    add_match(session, claim="inflation elsewhere", score=0.95, label="supports", status="dismissed")
    add_match(session, claim="unrelated", score=0.85, label="supports")
    session.commit()
    flt = MatchFilter(status="new", label="supports", q="Inflation")
    first = list_matches(session, flt, limit=2)
    assert [m.id for m in first] == [hits[0].id, hits[2].id]
    rest = list_matches(session, flt, limit=2, before=(first[-1].score, first[-1].id))
    assert [m.id for m in rest] == [hits[3].id]
    assert neighbours(session, flt, hits[2].score, hits[2].id) == (hits[0].id, hits[3].id)


def test_the_search_index_is_used(session: Session, database_url: str) -> None:
    add_match(session, claim="indexed search claim")
    session.commit()
    statements: list[str] = []
    engine = session.get_bind()

    @event.listens_for(engine, "before_cursor_execute")
    def capture(conn, cursor, statement, params, context, executemany):  # type: ignore[no-untyped-def]
        statements.append(statement)

    assert len(_ids(session, "search claim")) == 1
    event.remove(engine, "before_cursor_execute", capture)
    query = next(s for s in statements if "FROM matches" in s)
    if database_url.startswith("sqlite"):
        assert "search_fts MATCH" in query
        assert "search_fts MATCH" not in next(
            (s for s in _captured(session, "ab") if "FROM matches" in s), "")  # too short for trigrams
    else:
        names = set(session.scalars(text("SELECT indexname FROM pg_indexes WHERE indexname LIKE '%_trgm'")))
        assert names == {"ix_claims_text_trgm", "ix_items_title_trgm", "ix_items_summary_text_trgm",
                         "ix_items_content_text_trgm"}


def _captured(session: Session, q: str) -> list[str]:
    statements: list[str] = []
    engine = session.get_bind()

    def capture(conn, cursor, statement, params, context, executemany):  # type: ignore[no-untyped-def]
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", capture)
    try:
        _ids(session, q)
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    return statements
