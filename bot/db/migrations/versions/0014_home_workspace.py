"""The workspace or tenant whoknows serves when no allow-list is configured.

Without WHOKNOWS_SLACK_WORKSPACES, whoknows installed by OAuth serves the first
Slack workspace installed, and without WHOKNOWS_TEAMS_TENANTS a multi-tenant Teams
bot the first tenant whose activity arrived with a valid token; both are kept
here, one row a platform. A database that already holds installations or Teams
references keeps the earliest of them.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    home = op.create_table(
        "home_workspace",
        sa.Column("platform", sa.String(length=16), nullable=False),
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200)),
        sa.Column("how", sa.String(length=32), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("platform", name="pk_home_workspace"),
    )
    connection = op.get_bind()
    now = datetime.now(UTC)
    rows = []
    first_install = connection.execute(
        sa.text(
            "SELECT enterprise_id, team_id, is_enterprise_install, team_name, enterprise_name "
            "FROM slack_installations WHERE bot_token IS NOT NULL "
            "ORDER BY installed_at, id LIMIT 1"
        )
    ).first()
    if first_install is not None:
        enterprise, team, org_wide, team_name, enterprise_name = first_install
        workspace = enterprise if org_wide or not team else team
        if workspace:
            name = enterprise_name if workspace == enterprise else team_name
            rows.append(("slack", workspace, name))
    for table in ("teams_channel", "teams_user"):
        tenant = connection.execute(
            sa.text(
                f"SELECT tenant_id FROM {table} WHERE tenant_id IS NOT NULL ORDER BY id LIMIT 1"
            )
        ).scalar()
        if tenant:
            rows.append(("teams", tenant, None))
            break
    if rows:
        op.bulk_insert(
            home,
            [
                {
                    "platform": p,
                    "workspace_id": w[:64],
                    "name": n and n[:200],
                    "how": "kept before",
                    "recorded_at": now,
                }
                for p, w, n in rows
            ],
        )


def downgrade() -> None:
    op.drop_table("home_workspace")
