"""Growth: learning goals, huddle observers, mentor pairs, and weekly team digests.

A learning goal is a topic someone wants to learn; huddle threads on it invite them
as observers (kept apart from the participants, so escalation and the time to the
first expert never count them). Mentorships pair a learner with a mentor for a
topic. A team's digest settings say when its weekly digest is due; each week's
digest is a job keyed by (kind, team, week), so two workers scheduling it make one.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-09
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _person(column: str, table: str, ondelete: str = "CASCADE") -> sa.Column:
    return sa.Column(
        column,
        sa.Integer(),
        sa.ForeignKey("person.id", ondelete=ondelete, name=f"fk_{table}_{column}_person"),
    )


def upgrade() -> None:
    with op.batch_alter_table("job") as batch_op:
        batch_op.add_column(sa.Column("team_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            "fk_job_team_id_team", "team", ["team_id"], ["id"], ondelete="CASCADE"
        )
        batch_op.create_unique_constraint("uq_job_kind_team_step", ["kind", "team_id", "step"])
    op.create_table(
        "learning_goal",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("tag_id", sa.Integer(), nullable=False),
        sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("start_level", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["person.id"],
            name="fk_learning_goal_person_id_person",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tag_id"], ["tag.id"], name="fk_learning_goal_tag_id_tag", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_learning_goal"),
    )
    op.create_index("ix_learning_goal_person_id", "learning_goal", ["person_id"])
    op.create_index("ix_learning_goal_tag_id", "learning_goal", ["tag_id"])
    op.create_table(
        "huddle_observer",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("huddle_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("tag_id", sa.Integer(), nullable=True),
        sa.Column("invited_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("left_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("replied_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["huddle_id"],
            ["huddle.id"],
            name="fk_huddle_observer_huddle_id_huddle",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["person.id"],
            name="fk_huddle_observer_person_id_person",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tag_id"], ["tag.id"], name="fk_huddle_observer_tag_id_tag", ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_huddle_observer"),
        sa.UniqueConstraint("huddle_id", "person_id", name="uq_huddle_observer_huddle_id"),
    )
    op.create_index("ix_huddle_observer_person_id", "huddle_observer", ["person_id"])
    op.create_table(
        "mentorship",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("learner_id", sa.Integer(), nullable=False),
        sa.Column("mentor_id", sa.Integer(), nullable=False),
        sa.Column("tag_id", sa.Integer(), nullable=False),
        sa.Column("paired_by_id", sa.Integer(), nullable=True),
        sa.Column("paired_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["learner_id"],
            ["person.id"],
            name="fk_mentorship_learner_id_person",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["mentor_id"], ["person.id"], name="fk_mentorship_mentor_id_person", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["tag_id"], ["tag.id"], name="fk_mentorship_tag_id_tag", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["paired_by_id"],
            ["person.id"],
            name="fk_mentorship_paired_by_id_person",
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_mentorship"),
    )
    op.create_index("ix_mentorship_learner_id", "mentorship", ["learner_id"])
    op.create_index("ix_mentorship_mentor_id", "mentorship", ["mentor_id"])
    op.create_table(
        "team_digest",
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("weekday", sa.Integer(), nullable=False),
        sa.Column("minute", sa.Integer(), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=True),
        sa.Column("leaderboard", sa.Boolean(), nullable=False),
        sa.Column("platform", sa.String(length=16), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["team_id"], ["team.id"], name="fk_team_digest_team_id_team", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("team_id", name="pk_team_digest"),
    )


def downgrade() -> None:
    op.drop_table("team_digest")
    op.drop_table("mentorship")
    op.drop_table("huddle_observer")
    op.drop_table("learning_goal")
    with op.batch_alter_table("job") as batch_op:
        batch_op.drop_constraint("uq_job_kind_team_step", type_="unique")
        batch_op.drop_constraint("fk_job_team_id_team", type_="foreignkey")
        batch_op.drop_column("team_id")
