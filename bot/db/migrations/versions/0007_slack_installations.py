"""Slack installations (one a workspace, OAuth) and OAuth states.

The tables of slack_sdk's SQLAlchemy installation store and state store, column
for column (tests/adapters/slack/test_oauth.py compares them with the stores'
own metadata): the adapter uses those stores on our engine and never creates
tables itself. They are written here rather than imported, because the core
imports no platform SDK.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "slack_installations",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("client_id", sa.String(length=32), nullable=False),
        sa.Column("app_id", sa.String(length=32), nullable=False),
        sa.Column("enterprise_id", sa.String(length=32)),
        sa.Column("enterprise_name", sa.String(length=200)),
        sa.Column("enterprise_url", sa.String(length=200)),
        sa.Column("team_id", sa.String(length=32)),
        sa.Column("team_name", sa.String(length=200)),
        sa.Column("bot_token", sa.String(length=200)),
        sa.Column("bot_id", sa.String(length=32)),
        sa.Column("bot_user_id", sa.String(length=32)),
        sa.Column("bot_scopes", sa.String(length=1000)),
        sa.Column("bot_refresh_token", sa.String(length=200)),
        sa.Column("bot_token_expires_at", sa.DateTime()),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("user_token", sa.String(length=200)),
        sa.Column("user_scopes", sa.String(length=1000)),
        sa.Column("user_refresh_token", sa.String(length=200)),
        sa.Column("user_token_expires_at", sa.DateTime()),
        sa.Column("incoming_webhook_url", sa.String(length=200)),
        sa.Column("incoming_webhook_channel", sa.String(length=200)),
        sa.Column("incoming_webhook_channel_id", sa.String(length=200)),
        sa.Column("incoming_webhook_configuration_url", sa.String(length=200)),
        sa.Column("is_enterprise_install", sa.Boolean(), nullable=False),
        sa.Column("token_type", sa.String(length=32)),
        sa.Column("installed_at", sa.DateTime(), nullable=False),
    )
    op.create_index(
        "slack_installations_idx",
        "slack_installations",
        ["client_id", "enterprise_id", "team_id", "user_id", "installed_at"],
    )
    op.create_table(
        "slack_bots",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("client_id", sa.String(length=32), nullable=False),
        sa.Column("app_id", sa.String(length=32), nullable=False),
        sa.Column("enterprise_id", sa.String(length=32)),
        sa.Column("enterprise_name", sa.String(length=200)),
        sa.Column("team_id", sa.String(length=32)),
        sa.Column("team_name", sa.String(length=200)),
        sa.Column("bot_token", sa.String(length=200)),
        sa.Column("bot_id", sa.String(length=32)),
        sa.Column("bot_user_id", sa.String(length=32)),
        sa.Column("bot_scopes", sa.String(length=1000)),
        sa.Column("bot_refresh_token", sa.String(length=200)),
        sa.Column("bot_token_expires_at", sa.DateTime()),
        sa.Column("is_enterprise_install", sa.Boolean(), nullable=False),
        sa.Column("installed_at", sa.DateTime(), nullable=False),
    )
    op.create_index(
        "slack_bots_idx",
        "slack_bots",
        ["client_id", "enterprise_id", "team_id", "installed_at"],
    )
    op.create_table(
        "slack_oauth_states",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("state", sa.String(length=200), nullable=False),
        sa.Column("expire_at", sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("slack_oauth_states")
    op.drop_table("slack_bots")
    op.drop_table("slack_installations")
