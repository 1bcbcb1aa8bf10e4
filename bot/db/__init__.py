"""Storage: the domain model, engines, units of work and migrations."""

from bot.db.engine import Database, open_database

__all__ = ["Database", "open_database"]
