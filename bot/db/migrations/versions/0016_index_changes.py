"""Which knowledge entries each knowledge revision changed.

Every change to the knowledge base (a resolved huddle, an edit, a deletion) moved
the knowledge revision on, and every worker reloaded its whole knowledge index:
3-5 s at 100,000 entries, and a copy of it in memory meanwhile. With the entries
each revision changed written beside it, a worker applies just those.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "index_change",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("entry_id", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_index_change")),
    )
    op.create_index(op.f("ix_index_change_revision"), "index_change", ["revision"])


def downgrade() -> None:
    op.drop_index(op.f("ix_index_change_revision"), table_name="index_change")
    op.drop_table("index_change")
