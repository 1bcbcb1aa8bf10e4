from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from bot.db import Database, open_database
from bot.db.engine import include_object
from bot.db.models import Base


def test_migrations_build_the_whole_model_from_empty(empty_database_url: str) -> None:
    database = Database(empty_database_url)
    try:
        assert "person" not in inspect(database.engine).get_table_names()
        database.upgrade()
        tables = set(inspect(database.engine).get_table_names())
        assert set(Base.metadata.tables) <= tables
        with database.engine.connect() as connection:
            # The migrations and the models describe the same schema.
            context = MigrationContext.configure(
                connection, opts={"include_object": include_object}
            )
            diff = compare_metadata(context, Base.metadata)
        assert diff == []
    finally:
        database.dispose()


def test_upgrade_twice_is_a_no_op(database_url: str) -> None:
    open_database(database_url).dispose()
    database = open_database(database_url)
    with database.engine.connect() as connection:
        assert MigrationContext.configure(connection).get_current_revision() is not None
    database.dispose()


def test_sqlite_connections_enforce_foreign_keys_and_use_wal(tmp_path) -> None:
    database = open_database(f"sqlite:///{tmp_path / 'x.db'}")
    with database.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5000
    database.dispose()
