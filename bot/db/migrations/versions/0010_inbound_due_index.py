"""Requests due for take-over found by their state and lease, not by a scan.

Every worker asks once a second whether any request's lease has run out. Its
query filtered by platform, state and lease; the only index it could use was
(platform, key), so each probe read every row the platform ever kept, answered
ones too, until pruning. An index on (state, lease_until) leads straight to the
few requests still open.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-23
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("inbound") as batch_op:
        batch_op.drop_index("ix_inbound_lease_until")
        batch_op.create_index("inbound_due_idx", ["state", "lease_until"])


def downgrade() -> None:
    with op.batch_alter_table("inbound") as batch_op:
        batch_op.drop_index("inbound_due_idx")
        batch_op.create_index("ix_inbound_lease_until", ["lease_until"])
