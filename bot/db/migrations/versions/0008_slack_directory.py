"""Which Slack workspace each channel and user is in.

What a request from a workspace tells the Slack adapter about its channels and users,
kept so that a restarted process, or another one on the same database, sends a waiting
delivery with the right workspace's token and stops it when that workspace uninstalls
whoknows (adapters/slack/whereabouts.py's `DIRECTORY`, which a test compares with this table).
An org-wide installation (Enterprise Grid) has no team id.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "slack_directory",
        sa.Column("slack_id", sa.String(length=32), primary_key=True),
        sa.Column("enterprise_id", sa.String(length=32)),
        sa.Column("team_id", sa.String(length=32)),
        sa.Column("is_enterprise_install", sa.Boolean(), nullable=False),
    )
    op.create_index(
        "slack_directory_workspace_idx", "slack_directory", ["enterprise_id", "team_id"]
    )


def downgrade() -> None:
    op.drop_table("slack_directory")
