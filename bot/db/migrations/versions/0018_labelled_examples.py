"""Labelled examples: answered questions that teach each tag's model, never shown as answers.

A *Helpful* vote on an expert card, a resolved huddle thread, a Message click not
followed by the same question, and a lead's example questions for a tag are each
a row; their sentence vectors go in `embedding` (kind "example"). A revision part
of their own tells each worker to refit its tag models.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "labelled_example",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column(
            "source",
            sa.Enum(
                "helpful",
                "huddle",
                "contact",
                "lead",
                name="example_source",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column(
            "tag_id",
            sa.Integer(),
            sa.ForeignKey("tag.id", ondelete="CASCADE", name="fk_labelled_example_tag_id_tag"),
        ),
        sa.Column(
            "person_id",
            sa.Integer(),
            sa.ForeignKey(
                "person.id", ondelete="CASCADE", name="fk_labelled_example_person_id_person"
            ),
        ),
        sa.Column(
            "asker_id",
            sa.Integer(),
            sa.ForeignKey(
                "person.id", ondelete="SET NULL", name="fk_labelled_example_asker_id_person"
            ),
        ),
        sa.Column(
            "query_id",
            sa.Integer(),
            sa.ForeignKey(
                "query_log.id", ondelete="SET NULL", name="fk_labelled_example_query_id_query_log"
            ),
        ),
        sa.Column(
            "huddle_id",
            sa.Integer(),
            sa.ForeignKey(
                "huddle.id", ondelete="SET NULL", name="fk_labelled_example_huddle_id_huddle"
            ),
        ),
        sa.Column("pending_until", sa.DateTime(timezone=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("key", name="uq_labelled_example_key"),
    )
    op.create_index("ix_labelled_example_tag_id", "labelled_example", ["tag_id"])
    op.create_index("ix_labelled_example_person_id", "labelled_example", ["person_id"])
    op.create_index("ix_labelled_example_pending_until", "labelled_example", ["pending_until"])
    op.bulk_insert(
        sa.table("revision", sa.column("part", sa.String), sa.column("value", sa.Integer)),
        [{"part": "learning", "value": 0}],
    )


def downgrade() -> None:
    op.execute("DELETE FROM revision WHERE part = 'learning'")
    op.drop_table("labelled_example")
