"""Dashboard sessions that end when their person signs out, changes role or is removed.

A session cookie is signed and lasts a shift; on its own it cannot be taken back.
Each person now has a session generation that every session they start carries:
signing out, a changed role and a removal (forget, a merge, a deactivated
account) move it on, and a session of an earlier generation is refused.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("person") as batch_op:
        batch_op.add_column(
            sa.Column("session_generation", sa.Integer(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("person") as batch_op:
        batch_op.drop_column("session_generation")
