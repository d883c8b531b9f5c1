"""Storage: SQLAlchemy tables, engine/session helpers and Alembic migrations."""
