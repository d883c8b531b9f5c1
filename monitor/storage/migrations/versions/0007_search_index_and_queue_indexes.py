"""search index and queue indexes

Full-text search for the review queue's ``q`` filter, and indexes for the queue's other hot paths.

* SQLite: ``search_fts``, an FTS5 table with the ``trigram`` tokenizer, one row per claim (rowid = claims.id):
  ``claim_text`` and ``item_text`` (the item's title, summary and content). Trigrams keep the queue's substring
  semantics ("50%", "file_name", part of a word) and fold case without removing diacritics ("vụ án" is not "vu an").
  Triggers keep it in step with claims and items; only items that have claims are indexed (the queue never shows
  the others), so 1,000,000 items with 100,000 claims index 100,000 rows. ``unicode61 remove_diacritics 0`` would
  give a smaller index but matches whole tokens only ("50%", "file_name" or part of a word would no longer be
  found), and the queries re-check every candidate with the exact case-folded substring test, which needs an
  index that never misses a substring: trigram. Queries shorter than 3 characters cannot use trigrams and fall
  back to the scan.
* PostgreSQL: ``pg_trgm`` GIN indexes on the searched columns (``ILIKE '%...%'`` uses them). ``CREATE EXTENSION``
  needs the right privileges; when it fails (or the extension is not installed) the migration goes on without the
  trigram indexes and search stays correct, only slower.
* Both: ``(score, id)`` for the queue with no status/label filter, ``(statement_id, label, score, id)`` for the
  match page's "other outlets", and ``items.language`` for the language filter choices.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 09:00:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ITEM_TEXT = "coalesce({p}.title, '') || ' ' || coalesce({p}.summary_text, '') || ' ' || coalesce({p}.content_text, '')"

SQLITE_UP = [
    "CREATE VIRTUAL TABLE search_fts USING fts5(claim_text, item_text, tokenize='trigram')",
    # backfill: one row per existing claim
    "INSERT INTO search_fts (rowid, claim_text, item_text) SELECT c.id, c.text, " + ITEM_TEXT.format(p="i")
    + " FROM claims c JOIN items i ON i.id = c.item_id",
    "CREATE TRIGGER search_fts_claim_insert AFTER INSERT ON claims BEGIN "
    "INSERT INTO search_fts (rowid, claim_text, item_text) SELECT new.id, new.text, " + ITEM_TEXT.format(p="i")
    + " FROM items i WHERE i.id = new.item_id; END",
    "CREATE TRIGGER search_fts_claim_delete AFTER DELETE ON claims BEGIN "
    "DELETE FROM search_fts WHERE rowid = old.id; END",
    "CREATE TRIGGER search_fts_claim_update AFTER UPDATE OF text, item_id ON claims BEGIN "
    "DELETE FROM search_fts WHERE rowid = old.id; "
    "INSERT INTO search_fts (rowid, claim_text, item_text) SELECT new.id, new.text, " + ITEM_TEXT.format(p="i")
    + " FROM items i WHERE i.id = new.item_id; END",
    "CREATE TRIGGER search_fts_item_update AFTER UPDATE OF title, summary_text, content_text ON items BEGIN "
    "DELETE FROM search_fts WHERE rowid IN (SELECT id FROM claims WHERE item_id = new.id); "
    "INSERT INTO search_fts (rowid, claim_text, item_text) SELECT c.id, c.text, " + ITEM_TEXT.format(p="new")
    + " FROM claims c WHERE c.item_id = new.id; END",
]
SQLITE_DOWN = [
    "DROP TRIGGER IF EXISTS search_fts_item_update",
    "DROP TRIGGER IF EXISTS search_fts_claim_update",
    "DROP TRIGGER IF EXISTS search_fts_claim_delete",
    "DROP TRIGGER IF EXISTS search_fts_claim_insert",
    "DROP TABLE IF EXISTS search_fts",
]
PG_TRGM_INDEXES = {
    "ix_claims_text_trgm": ("claims", "text"),
    "ix_items_title_trgm": ("items", "title"),
    "ix_items_summary_text_trgm": ("items", "summary_text"),
    "ix_items_content_text_trgm": ("items", "content_text"),
}


def _postgres_trigram_indexes() -> None:
    bind = op.get_bind()
    available = bind.exec_driver_sql("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'").scalar()
    if not available:
        return
    savepoint = bind.begin_nested()
    try:
        bind.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except sa.exc.DBAPIError:  # not allowed here: search stays correct, by sequential scan
        savepoint.rollback()
        return
    savepoint.commit()
    for name, (table, column) in PG_TRGM_INDEXES.items():
        bind.exec_driver_sql(f"CREATE INDEX IF NOT EXISTS {name} ON {table} USING gin ({column} gin_trgm_ops)")


def upgrade() -> None:
    op.create_index('ix_matches_score_id', 'matches', ['score', 'id'])
    op.create_index('ix_matches_same_story', 'matches', ['statement_id', 'label', 'score', 'id'])
    op.create_index('ix_items_language', 'items', ['language'])
    dialect = op.get_bind().dialect.name
    if dialect == 'sqlite':
        for statement in SQLITE_UP:
            op.execute(statement)
    elif dialect == 'postgresql':
        _postgres_trigram_indexes()


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == 'sqlite':
        for statement in SQLITE_DOWN:
            op.execute(statement)
    elif dialect == 'postgresql':
        for name in PG_TRGM_INDEXES:
            op.execute(f"DROP INDEX IF EXISTS {name}")
    op.drop_index('ix_items_language', 'items')
    op.drop_index('ix_matches_same_story', 'matches')
    op.drop_index('ix_matches_score_id', 'matches')
