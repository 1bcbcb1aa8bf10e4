"""A reply's handles found by person, not by a scan of the platform's identities.

Every answer that names people looks up their ids on the platform it goes to:
`platform = ? AND person_id IN (…)`. With (platform, external_id) and
(person_id) to choose from and no statistics, SQLite took the first and read
every identity of the platform: 77 µs at 10,000 people, growing with the org.
One index on (person_id, platform) answers it directly (4 µs) and still serves
the person foreign key.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("identity") as batch_op:
        batch_op.drop_index("ix_identity_person_id")
        batch_op.create_index("identity_person_idx", ["person_id", "platform"])


def downgrade() -> None:
    with op.batch_alter_table("identity") as batch_op:
        batch_op.drop_index("identity_person_idx")
        batch_op.create_index("ix_identity_person_id", ["person_id"])
