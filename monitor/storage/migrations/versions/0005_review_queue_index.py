"""review queue index

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 13:26:12.475084
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('matches', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_matches_queue'))
        batch_op.create_index('ix_matches_queue_score', ['status', 'label', 'score', 'id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('matches', schema=None) as batch_op:
        batch_op.drop_index('ix_matches_queue_score')
        batch_op.create_index(batch_op.f('ix_matches_queue'), ['status', 'label', 'created_at'], unique=False)
