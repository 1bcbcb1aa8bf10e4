"""The knowledge base: search, read, edit (author or lead), delete (lead, audited), helpful."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from adapters.console.render import render
from bot.db.models import Embedding, HelpfulVote, KnowledgeEntry
from bot.router import Router
from bot.services import Services
from bot.services.knowledge import MAX_BODY_CHARS
from bot.types import Article, Command, Form
from tests.helpers import audit_rows, button, notices, person_id, press, say


def _entry_by(services: Services, key: str) -> int:
    """An entry the person wrote (the demo credits answers to its experts)."""
    with services.db.unit_of_work() as session:
        entries = session.scalars(select(KnowledgeEntry).order_by(KnowledgeEntry.id)).all()
        return next(e.id for e in entries if [a.key for a in e.authors] == [key])


def test_search_and_show(demo: Services, router: Router) -> None:
    found = say(demo, router, "alex", "kb", "prepaid top-up wrong number")
    articles = [e for e in found.elements if isinstance(e, Article)]
    assert articles and "wrong number" in articles[0].title
    shown = say(demo, router, "alex", "kb", f"show #{articles[0].entry_id}")
    assert "Written by" in render(shown)
    assert (
        "no knowledge entry #999999"
        in notices(say(demo, router, "alex", "kb", "show 999999"))[0].text
    )
    assert "Usage" in notices(say(demo, router, "alex", "kb", "edit"))[0].text


def test_an_author_edits_their_entry_and_it_is_audited(demo: Services, router: Router) -> None:
    entry_id = _entry_by(demo, "tomasz")
    done = say(demo, router, "tomasz", "kb", f"edit {entry_id} New title | New answer | refunds")
    assert notices(done)[0].severity == "success"
    with demo.db.unit_of_work() as session:
        entry = session.get(KnowledgeEntry, entry_id)
        assert (entry.title, entry.body, [t.name for t in entry.tags]) == (
            "New title",
            "New answer",
            ["refunds"],
        )
        # Its old sentence vector no longer describes it.
        stale = session.scalar(
            select(func.count())
            .select_from(Embedding)
            .where(Embedding.kind == "knowledge", Embedding.item_id == entry_id)
        )
        assert stale == 0
    row = audit_rows(demo)[-1]
    assert (row.action, row.target, row.allowed) == (
        "edit_knowledge",
        f"knowledge:{entry_id}",
        True,
    )
    assert "New title" in row.detail


def test_edit_and_delete_rights(demo: Services, router: Router) -> None:
    entry_id = _entry_by(demo, "tomasz")
    # Another agent may not edit, nor delete; each refusal is audited.
    refused = say(demo, router, "omar", "kb", f"edit {entry_id} Mine | mine")
    assert notices(refused)[0].severity == "error"
    assert (
        "Only a lead or an admin"
        in notices(say(demo, router, "tomasz", "kb", f"delete {entry_id}"))[0].text
    )
    denials = [(r.action, r.allowed) for r in audit_rows(demo)]
    assert denials == [("edit_knowledge", False), ("delete_knowledge", False)]
    # A lead of another team has no say over it; the author's lead does.
    assert notices(say(demo, router, "kwame", "kb", f"delete {entry_id}"))[0].severity == "error"
    deleted = say(demo, router, "priya", "kb", f"delete {entry_id}")
    assert "Deleted knowledge entry" in notices(deleted)[0].text
    with demo.db.unit_of_work() as session:
        assert session.get(KnowledgeEntry, entry_id) is None
    row = audit_rows(demo)[-1]
    assert (row.action, row.allowed, row.actor_label) == ("delete_knowledge", True, "priya")
    assert "tomasz" in row.detail  # what was lost, and whose it was


@pytest.mark.reliability(18)
def test_the_edit_form_refuses_a_stale_version(demo: Services, router: Router) -> None:
    entry_id = _entry_by(demo, "tomasz")
    form = next(
        e
        for e in say(demo, router, "tomasz", "kb", f"edit {entry_id}").elements
        if isinstance(e, Form)
    )
    say(demo, router, "priya", "kb", f"edit {entry_id} Priya's title | Priya's answer")
    submitted = router.dispatch(
        Command(
            "test",
            person_id(demo, "tomasz"),
            "",
            form.value,
            action_id=form.action_id,
            values={"title": "Tomasz's title", "answer": "Tomasz's answer", "tags": ""},
        ),
        demo,
    )
    assert "changed entry" in render(submitted)
    with demo.db.unit_of_work() as session:
        assert session.get(KnowledgeEntry, entry_id).title == "Priya's title"


def test_helpful_counts_each_person_once(demo: Services, router: Router) -> None:
    answer = say(demo, router, "alex", "whoknows", "refund for a prepaid top-up")
    helpful = button(answer, "Helpful")
    first = press(demo, router, "alex", helpful)
    again = press(demo, router, "alex", helpful)  # a double click
    other = press(demo, router, "omar", helpful)
    assert "1 found" in notices(first)[0].text
    assert "already marked" in notices(again)[0].text
    assert "2 found" in notices(other)[0].text
    with demo.db.unit_of_work() as session:
        entry = session.get(KnowledgeEntry, int(helpful.value))
        assert entry.helpful_count == 2
        assert session.scalar(select(func.count()).select_from(HelpfulVote)) == 2


def test_an_edit_that_duplicates_another_entry_is_refused_clearly(
    demo: Services, router: Router
) -> None:
    entry_id = _entry_by(demo, "tomasz")
    with demo.db.unit_of_work() as session:
        other = session.scalars(
            select(KnowledgeEntry).where(KnowledgeEntry.id != entry_id).limit(1)
        ).one()
        title, body = other.title, other.body
    reply = say(demo, router, "tomasz", "kb", f"edit {entry_id} {title} | {body}")
    assert f"Entry #{other.id} already says exactly that" in notices(reply)[0].text


def test_an_edit_is_held_to_the_one_knowledge_limit(demo: Services, router: Router) -> None:
    entry_id = _entry_by(demo, "tomasz")
    with demo.db.reading() as session:
        before = session.get(KnowledgeEntry, entry_id).body
    too_long = "y" * (MAX_BODY_CHARS + 1)
    reply = say(demo, router, "tomasz", "kb", f"edit {entry_id} Title | {too_long}")
    assert notices(reply)[0].text == (
        f"An answer is at most {MAX_BODY_CHARS:,} characters (this one has "
        f"{MAX_BODY_CHARS + 1:,}): shorten it, or split it into several entries."
    )
    with demo.db.reading() as session:
        assert session.get(KnowledgeEntry, entry_id).body == before
    at_limit = say(demo, router, "tomasz", "kb", f"edit {entry_id} Title | {'y' * MAX_BODY_CHARS}")
    assert notices(at_limit)[0].severity == "success"
