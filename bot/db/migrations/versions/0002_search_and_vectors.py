"""Full-text search over knowledge, stored sentence vectors, index revisions.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SQLITE_FTS = [
    # An external-content FTS5 table kept in step by triggers: the text is stored once.
    """CREATE VIRTUAL TABLE knowledge_fts USING fts5(
        title, body, content='knowledge_entry', content_rowid='id',
        tokenize='porter unicode61 remove_diacritics 2')""",
    """CREATE TRIGGER knowledge_fts_insert AFTER INSERT ON knowledge_entry BEGIN
        INSERT INTO knowledge_fts(rowid, title, body) VALUES (new.id, new.title, new.body);
    END""",
    """CREATE TRIGGER knowledge_fts_delete AFTER DELETE ON knowledge_entry BEGIN
        INSERT INTO knowledge_fts(knowledge_fts, rowid, title, body)
        VALUES ('delete', old.id, old.title, old.body);
    END""",
    """CREATE TRIGGER knowledge_fts_update AFTER UPDATE OF title, body ON knowledge_entry BEGIN
        INSERT INTO knowledge_fts(knowledge_fts, rowid, title, body)
        VALUES ('delete', old.id, old.title, old.body);
        INSERT INTO knowledge_fts(rowid, title, body) VALUES (new.id, new.title, new.body);
    END""",
    "INSERT INTO knowledge_fts(knowledge_fts) VALUES ('rebuild')",
]
# The same expression is used by the search query, so the planner uses the index.
POSTGRES_FTS = [
    """CREATE INDEX ix_knowledge_entry_fts ON knowledge_entry
       USING gin (to_tsvector('english', title || ' ' || body))""",
]


def upgrade() -> None:
    op.create_table(
        "embedding",
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("model", sa.String(length=64), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("kind", "item_id", "model", name=op.f("pk_embedding")),
    )
    revision_table = op.create_table(
        "revision",
        sa.Column("part", sa.String(length=16), nullable=False),
        sa.Column("value", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("part", name=op.f("pk_revision")),
    )
    op.bulk_insert(
        revision_table, [{"part": "people", "value": 0}, {"part": "knowledge", "value": 0}]
    )
    statements = SQLITE_FTS if op.get_bind().dialect.name == "sqlite" else POSTGRES_FTS
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TABLE knowledge_fts")
    else:
        op.drop_index("ix_knowledge_entry_fts", table_name="knowledge_entry")
    op.drop_table("revision")
    op.drop_table("embedding")
