"""Migration 0014 keeps, as the one workspace served, what a database already held."""

from __future__ import annotations

from datetime import datetime

import pytest
from alembic import command as alembic
from sqlalchemy import select, text

from bot.db import Database
from bot.db.engine import alembic_config
from bot.db.models import HomeWorkspace


@pytest.mark.parametrize("has_data", [True, False])
def test_the_earliest_installation_and_tenant_become_the_ones_served(
    empty_database_url: str, has_data: bool
) -> None:
    database = Database(empty_database_url)
    try:
        alembic.upgrade(alembic_config(database.engine), "0013")
        if has_data:
            with database.engine.begin() as connection:
                for n, (team, at) in enumerate(
                    (("T0LATE", "2026-06-01"), ("T0FIRST", "2026-01-01"))
                ):
                    connection.execute(
                        text(
                            "INSERT INTO slack_installations (id, client_id, app_id, team_id, "
                            "team_name, bot_token, user_id, installed_at, is_enterprise_install) "
                            "VALUES (:id, 'c', 'A1', :team, :name, :token, 'U1', :at, false)"
                        ),
                        {
                            "id": n + 1,
                            "team": team,
                            "name": f"{team} Inc",
                            "token": f"xoxb-{n}",
                            "at": datetime.fromisoformat(at),
                        },
                    )
                for n, tenant in enumerate(("tenant-first", "tenant-later")):
                    connection.execute(
                        text(
                            "INSERT INTO teams_channel (id, conversation_id, kind, tenant_id, "
                            "service_url, active, updated_at) "
                            "VALUES (:id, :conversation, 'channel', :tenant, 'https://smba/', "
                            "true, :at)"
                        ),
                        {
                            "id": n + 1,
                            "conversation": f"19:c{n}",
                            "tenant": tenant,
                            "at": datetime.fromisoformat("2026-01-01"),
                        },
                    )
        database.upgrade()
        with database.reading() as session:
            homes = {
                h.platform: (h.workspace_id, h.name, h.how)
                for h in session.scalars(select(HomeWorkspace))
            }
        if has_data:
            assert homes == {
                "slack": ("T0FIRST", "T0FIRST Inc", "kept before"),
                "teams": ("tenant-first", None, "kept before"),
            }
        else:
            assert homes == {}
    finally:
        database.dispose()
