"""Alembic environment: runs migrations against the URL given in the config (no alembic.ini needed)."""

from __future__ import annotations

from alembic import context

from monitor.storage.db import make_engine
from monitor.storage.tables import Base

config = context.config
target_metadata = Base.metadata
# Tables that other libraries manage themselves (APScheduler's job store); autogenerate must not drop them.
FOREIGN_TABLES = {"apscheduler_jobs"}
# Made by raw SQL in migration 0007, outside the metadata: the SQLite FTS5 table (and its shadow tables) and the
# PostgreSQL pg_trgm indexes.
SEARCH_TABLE_PREFIX = "search_fts"
SEARCH_INDEX_SUFFIX = "_trgm"


def include_object(obj, name, type_, reflected, compare_to):  # type: ignore[no-untyped-def]
    if type_ == "table" and (name in FOREIGN_TABLES or (name or "").startswith(SEARCH_TABLE_PREFIX)):
        return False
    return not (type_ == "index" and reflected and (name or "").endswith(SEARCH_INDEX_SUFFIX))


def run_migrations_offline() -> None:
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata,
                      literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connectable = config.attributes.get("connection")
    if connectable is not None:
        _run(connectable)
        return
    engine = make_engine(config.get_main_option("sqlalchemy.url"))
    with engine.connect() as connection:
        _run(connection)
    engine.dispose()


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        # Batch mode rebuilds a table (create copy, DROP old, rename). With foreign keys on, that DROP
        # cascades: rebuilding `matches` would delete every review event, rebuilding `users` would clear
        # reviewers. The pragma only takes effect outside a transaction, so it is set before the migration.
        connection.commit()
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        connection.commit()
    try:
        context.configure(connection=connection, target_metadata=target_metadata,
                          render_as_batch=sqlite, compare_type=True, include_object=include_object)
        with context.begin_transaction():
            context.run_migrations()
            if sqlite:
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise RuntimeError(f"migration left rows with broken references: {broken[:5]}")
    finally:
        if sqlite:
            connection.commit()
            connection.exec_driver_sql("PRAGMA foreign_keys=ON")
            connection.commit()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
