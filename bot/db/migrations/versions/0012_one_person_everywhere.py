"""One person everywhere: e-mails, ids as given, and the links whoknows would not make.

A person's e-mail (unique without case) is what links an account seen on Slack or
Teams to the person a lead imported; `given_id` keeps the case an import spelled
the id in, for exports to give back; `origin` says which platform brought the
person (only that platform's profile renames them). An account conflict is a
link refused on doubt, listed for admins. Identities are also found by their id
without case, for ids a lead typed in another case than the platform's.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("person") as batch_op:
        batch_op.add_column(sa.Column("given_id", sa.String(length=120)))
        batch_op.add_column(sa.Column("email", sa.String(length=320)))
        batch_op.add_column(sa.Column("email_key", sa.String(length=320)))
        batch_op.add_column(sa.Column("origin", sa.String(length=16)))
        batch_op.create_unique_constraint("uq_person_email_key", ["email_key"])
    op.create_index("identity_folded_idx", "identity", ["platform", sa.text("lower(external_id)")])
    op.create_table(
        "account_conflict",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("key", sa.String(length=600), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("platform", sa.String(length=16)),
        sa.Column("external_id", sa.String(length=200)),
        sa.Column("email", sa.String(length=320)),
        sa.Column(
            "holder_id",
            sa.Integer(),
            sa.ForeignKey(
                "person.id", ondelete="CASCADE", name="fk_account_conflict_holder_id_person"
            ),
        ),
        sa.Column(
            "claimant_id",
            sa.Integer(),
            sa.ForeignKey(
                "person.id", ondelete="CASCADE", name="fk_account_conflict_claimant_id_person"
            ),
        ),
        sa.Column("claimed_by", sa.String(length=200)),
        sa.Column("seen_in", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_account_conflict"),
        sa.UniqueConstraint("key", name="uq_account_conflict_key"),
    )
    op.create_index("ix_account_conflict_holder_id", "account_conflict", ["holder_id"])
    op.create_index("ix_account_conflict_claimant_id", "account_conflict", ["claimant_id"])


def downgrade() -> None:
    op.drop_table("account_conflict")
    op.drop_index("identity_folded_idx", table_name="identity")
    with op.batch_alter_table("person") as batch_op:
        batch_op.drop_constraint("uq_person_email_key", type_="unique")
        for column in ("origin", "email_key", "email", "given_id"):
            batch_op.drop_column(column)
