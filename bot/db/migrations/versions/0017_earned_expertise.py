"""Earned expertise and freshness: leads' decisions on suggested skills, re-verify reminders.

A skill the evidence suggests (huddle threads resolved, answers written, helpful
votes) is accepted, set at another level or dismissed by a lead: each decision is a
`skill_decision` row, so a dismissed suggestion stays out for a while and an accepted
one does not come back. `person.reverify_asked_at` is when a lead was last asked to
re-verify their team's old verified skills (at most once a week). A job of no huddle
and no team (the recurring sweep that asks them) is one row per kind and step, however many
workers schedule it at once: a partial unique index.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("person") as batch_op:
        batch_op.add_column(sa.Column("reverify_asked_at", sa.DateTime(timezone=True)))
    op.create_index(
        "job_unhuddled_uq",
        "job",
        ["kind", "step"],
        unique=True,
        sqlite_where=sa.text("huddle_id IS NULL AND team_id IS NULL"),
        postgresql_where=sa.text("huddle_id IS NULL AND team_id IS NULL"),
    )
    op.create_table(
        "skill_decision",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "person_id",
            sa.Integer(),
            sa.ForeignKey(
                "person.id", ondelete="CASCADE", name="fk_skill_decision_person_id_person"
            ),
            nullable=False,
        ),
        sa.Column(
            "tag_id",
            sa.Integer(),
            sa.ForeignKey("tag.id", ondelete="CASCADE", name="fk_skill_decision_tag_id_tag"),
            nullable=False,
        ),
        sa.Column("decision", sa.String(length=16), nullable=False),
        sa.Column("suggested_level", sa.Integer(), nullable=False),
        sa.Column("level", sa.Integer()),
        sa.Column(
            "decided_by_id",
            sa.Integer(),
            sa.ForeignKey(
                "person.id", ondelete="SET NULL", name="fk_skill_decision_decided_by_id_person"
            ),
        ),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("hidden_until", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint("id", name="pk_skill_decision"),
    )
    op.create_index("skill_decision_pair_idx", "skill_decision", ["person_id", "tag_id"])
    op.create_index("ix_skill_decision_tag_id", "skill_decision", ["tag_id"])


def downgrade() -> None:
    op.drop_table("skill_decision")
    op.drop_index("job_unhuddled_uq", table_name="job")
    with op.batch_alter_table("person") as batch_op:
        batch_op.drop_column("reverify_asked_at")
