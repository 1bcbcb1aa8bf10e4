"""`whoknows forget`: nothing of the person is left anywhere, and no table is left out."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import String, Text, column, func, insert, inspect, select, table, text, update
from sqlalchemy.orm import Session

from adapters.cli import main
from bot.db import open_database
from bot.db.models import (
    AccountConflict,
    Base,
    DeliveryState,
    Outbox,
    Person,
    QueryLog,
    TeamsUser,
)
from bot.router import Router
from bot.runtime import codec, retention
from bot.services import Services, accounts, forgetting, people
from bot.types import Reply
from bot.types import Text as TextElement
from tests.conftest import NOW
from tests.helpers import notices, say

SLACK_ID, TEAMS_ID = "U0MARIA", "aad-0000-maria"
HER_QUESTION = "how do i cancel a roaming bundle abroad"
# Her handle, name, e-mail and account ids: none may be left, wherever it was written.
TRACES = re.compile(
    r"(?<!\w)(maria|maria santos|maria\.santos@northwind-mobile\.example|u0maria|"
    r"aad-0000-maria)(?!\w)",
    re.IGNORECASE,
)
# Kept on purpose: the team's knowledge (an answer may name a colleague), and huddle
# threads, posted in a team channel.
KEPT = {("knowledge_entry", "title"), ("knowledge_entry", "body"), ("huddle", "topic")}


def _slack_tables(session: Session) -> None:
    """What the Slack adapter keeps about her account: its workspace, and an install."""
    session.execute(
        insert(table("slack_directory", column("slack_id"), column("is_enterprise_install"))),
        {"slack_id": SLACK_ID, "is_enterprise_install": False},
    )
    installations = table(
        "slack_installations",
        *(
            column(name)
            for name in (
                "client_id",
                "app_id",
                "team_id",
                "bot_token",
                "user_id",
                "user_token",
                "is_enterprise_install",
                "installed_at",
            )
        ),
    )
    session.execute(
        insert(installations),
        {
            "client_id": "c",
            "app_id": "A1",
            "team_id": "T1",
            "bot_token": "xoxb-1",
            "user_id": SLACK_ID,
            "user_token": "xoxp-hers",
            "is_enterprise_install": False,
            "installed_at": NOW.replace(tzinfo=None),
        },
    )


def _everywhere(demo: Services, router: Router) -> None:
    """Maria in every place whoknows writes a person down."""
    with demo.db.unit_of_work() as session:
        maria = people.by_key(session, "maria")
        assert maria is not None and maria.email
        accounts.link_by_hand(session, maria, "slack", SLACK_ID, actor_label="test")
        accounts.link_by_hand(session, maria, "teams", TEAMS_ID, actor_label="test")
        session.add(TeamsUser(aad_object_id=TEAMS_ID, user_id="29:maria", service_url="http://t"))
        _slack_tables(session)
        # Another account claiming her e-mail: a doubt listed for admins.
        accounts.conflict(
            session,
            accounts.EMAIL_TAKEN,
            seen_in="import",
            now=NOW,
            email=maria.email,
            holder=maria,
            claimed_by="line 3: maria2",
        )
    say(demo, router, "maria", "whoknows", HER_QUESTION)
    say(demo, router, "alex", "whoknows", "refund for a prepaid top-up")  # suggests her
    say(demo, router, "priya", "expertise", "tag @maria chargebacks:4")  # audited
    opened = say(demo, router, "alex", "huddle", "chargeback dispute @maria @omar")
    number = re.search(r"#(\d+)", notices(opened)[0].text).group(1)  # type: ignore[union-attr]
    say(demo, router, "maria", "huddle", f"reply {number} Her own words in the thread")
    with demo.db.unit_of_work() as session:
        session.execute(update(Outbox).values(state=DeliveryState.SENT, sent_at=NOW))
    # And one about her still waiting to go out.
    say(demo, router, "zoe", "huddle", "sim swap fraud @maria")


def _traces_left(services: Services) -> list[tuple[str, str, str]]:
    """Every text value of every table that still names her."""
    found = []
    with services.db.reading() as session:
        schema = inspect(session.connection())
        for name in schema.get_table_names():
            if name.startswith(forgetting.COPIES_OF_KNOWLEDGE):
                continue
            texts = [
                c["name"]
                for c in schema.get_columns(name)
                if isinstance(c["type"], String | Text) and (name, c["name"]) not in KEPT
            ]
            if not texts:
                continue
            rows = session.execute(select(*(column(c) for c in texts)).select_from(table(name)))
            for row in rows:
                for column_name, value in zip(texts, row, strict=True):
                    if isinstance(value, str) and TRACES.search(value):
                        found.append((name, column_name, value[:120]))
    return found


def test_forget_leaves_nothing_of_the_person_in_any_table(
    demo: Services, router: Router, capsys: pytest.CaptureFixture[str]
) -> None:
    _everywhere(demo, router)
    assert {where for where, _, _ in _traces_left(demo)} >= {
        "person",
        "identity",
        "audit_log",
        "outbox",
        "query_log",
        "teams_user",
        "slack_directory",
        "slack_installations",
        "account_conflict",
    }
    with demo.db.reading() as session:
        maria = people.by_key(session, "maria")
        assert maria is not None
        maria_id, generation = maria.id, maria.session_generation
        questions = session.scalar(select(func.count()).select_from(QueryLog))
    assert main(["--db", demo.db.url, "forget", "maria"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("forgot maria: profile, e-mail, accounts")
    assert _traces_left(demo) == []
    with demo.db.reading() as session:
        person = session.get(Person, maria_id)
        assert (person.key, person.display_name, person.email, person.email_key) == (
            f"forgotten-{maria_id}",
            forgetting.FORGOTTEN_NAME,
            None,
            None,
        )
        assert person.session_generation > generation  # her dashboard sessions ended
        # Her own question is gone; the others' stay, suggesting the former colleague.
        assert session.scalar(select(func.count()).select_from(QueryLog)) == questions - 1
        assert not session.scalars(select(QueryLog).where(QueryLog.text == HER_QUESTION)).all()
        suggested = session.scalars(select(QueryLog.suggested)).all()
        assert any(f"forgotten-{maria_id}" in s.split(",") for s in suggested)
        # The message still to go out names the former colleague, and mentions nobody gone.
        (waiting,) = session.scalars(
            select(Outbox).where(Outbox.state == DeliveryState.PENDING, Outbox.kind == "post")
        ).all()
        assert "Former colleague" in waiting.body
        assert session.scalar(select(func.count()).select_from(AccountConflict)) == 0
        installed = session.execute(text("SELECT user_id, user_token FROM slack_installations"))
        assert installed.all() == [("", None)]


def test_every_table_is_known_to_forget(database_url: str) -> None:
    """A new table fails here until `bot.services.forgetting` says what forgetting someone
    does to it (TABLES), or that it holds nothing about anyone (NO_PERSON_DATA)."""
    database = open_database(database_url)
    try:
        tables = set(inspect(database.engine).get_table_names())
    finally:
        database.dispose()
    tables = {t for t in tables if not t.startswith(forgetting.COPIES_OF_KNOWLEDGE)}
    listed = set(forgetting.TABLES) | forgetting.NO_PERSON_DATA
    assert tables - listed == set(), "say in bot/services/forgetting.py what forget does to these"
    assert listed - tables == set(), "these are gone from the schema: take them off the lists"
    assert not set(forgetting.TABLES) & forgetting.NO_PERSON_DATA
    # A table that refers to a person holds data about them, whatever else it holds.
    referring = {c.table.name for c in accounts.person_references()} | {"person"}
    assert referring <= set(forgetting.TABLES)
    assert {t.name for t in Base.metadata.sorted_tables} <= listed


def test_retention_prunes_delivered_messages_after_a_week(services: Services) -> None:
    now = services.clock()
    body = codec.dumps(Reply.of(TextElement("hello")))
    ages = {
        "old sent": (DeliveryState.SENT, timedelta(days=8)),
        "new sent": (DeliveryState.SENT, timedelta(days=1)),
        "old failed": (DeliveryState.FAILED, timedelta(days=8)),
        "old pending": (DeliveryState.PENDING, timedelta(days=8)),
    }
    with services.db.unit_of_work() as session:
        for channel, (state, age) in ages.items():
            session.add(
                Outbox(
                    platform="console",
                    kind="post",
                    channel=channel,
                    body=body,
                    state=state,
                    created_at=now - age,
                    next_attempt_at=now - age,
                    sent_at=now - age if state == DeliveryState.SENT else None,
                )
            )
    assert retention.prune(services).messages == 1
    with services.db.reading() as session:
        left = set(session.scalars(select(Outbox.channel)))
    assert left == {"new sent", "old failed", "old pending"}
