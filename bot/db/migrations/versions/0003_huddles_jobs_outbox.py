"""Huddle ladders, due jobs, the outbox, helpful votes, a team channel.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _state(name: str, *values: str) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, length=16)


def upgrade() -> None:
    with op.batch_alter_table("team") as batch_op:
        batch_op.add_column(sa.Column("channel", sa.String(length=200), nullable=True))
    with op.batch_alter_table("huddle") as batch_op:
        batch_op.add_column(
            sa.Column("ladder_step", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("closed_by_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_huddle_closed_by_id_person"),
            "person",
            ["closed_by_id"],
            ["id"],
            ondelete="SET NULL",
        )
    with op.batch_alter_table("huddle_participant") as batch_op:
        batch_op.add_column(
            sa.Column("invited", sa.Boolean(), nullable=False, server_default=sa.true())
        )
        batch_op.add_column(sa.Column("round", sa.Integer(), nullable=False, server_default="0"))
    # The defaults were only for existing rows; the models supply values from now on.
    with op.batch_alter_table("huddle") as batch_op:
        batch_op.alter_column("ladder_step", server_default=None)
    with op.batch_alter_table("huddle_participant") as batch_op:
        batch_op.alter_column("invited", server_default=None)
        batch_op.alter_column("round", server_default=None)

    op.create_table(
        "helpful_vote",
        sa.Column("entry_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["entry_id"],
            ["knowledge_entry.id"],
            name=op.f("fk_helpful_vote_entry_id_knowledge_entry"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["person.id"],
            name=op.f("fk_helpful_vote_person_id_person"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("entry_id", "person_id", name=op.f("pk_helpful_vote")),
    )
    op.create_table(
        "job",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("huddle_id", sa.Integer(), nullable=True),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", _state("job_state", "pending", "done", "cancelled"), nullable=False),
        sa.Column("fired_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("fired_by", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["huddle_id"], ["huddle.id"], name=op.f("fk_job_huddle_id_huddle"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job")),
        sa.UniqueConstraint("kind", "huddle_id", "step", name=op.f("uq_job_kind")),
    )
    op.create_index(op.f("ix_job_due_at"), "job", ["due_at"], unique=False)
    op.create_index(op.f("ix_job_state"), "job", ["state"], unique=False)
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("huddle_id", sa.Integer(), nullable=True),
        sa.Column("is_root", sa.Boolean(), nullable=False),
        sa.Column("channel", sa.String(length=200), nullable=True),
        sa.Column("person_id", sa.Integer(), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("state", _state("delivery_state", "pending", "sent", "failed"), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["huddle_id"],
            ["huddle.id"],
            name=op.f("fk_outbox_huddle_id_huddle"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["person.id"],
            name=op.f("fk_outbox_person_id_person"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
    )
    op.create_index(op.f("ix_outbox_state"), "outbox", ["state"], unique=False)


def downgrade() -> None:
    op.drop_table("outbox")
    op.drop_table("job")
    op.drop_table("helpful_vote")
    with op.batch_alter_table("huddle_participant") as batch_op:
        batch_op.drop_column("round")
        batch_op.drop_column("invited")
    with op.batch_alter_table("huddle") as batch_op:
        batch_op.drop_constraint("fk_huddle_closed_by_id_person", type_="foreignkey")
        batch_op.drop_column("closed_by_id")
        batch_op.drop_column("ladder_step")
    with op.batch_alter_table("team") as batch_op:
        batch_op.drop_column("channel")
