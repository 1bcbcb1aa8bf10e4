"""Who came first in each answer, indexed, so fairness counts without reading the log.

Ranking asks how often each of its shortlisted people was the first suggestion in
the last hour. It read the last hour's log and split every row's `suggested`;
at a few answers a second that was a fifth of the time of an answer. Rows from
before this column stay NULL: only the last hour counts, so they would never be
counted again anyway.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("query_log") as batch_op:
        batch_op.add_column(sa.Column("first_suggested", sa.String(length=120)))
        batch_op.create_index("query_log_first_idx", ["first_suggested", "created_at"])


def downgrade() -> None:
    with op.batch_alter_table("query_log") as batch_op:
        batch_op.drop_index("query_log_first_idx")
        batch_op.drop_column("first_suggested")
