"""Learning from use: answered questions kept as labelled examples, never as knowledge."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from bot.db import revision
from bot.db.models import ExampleSource, KnowledgeEntry, LabelledExample, QueryLog, Tag
from bot.matching import Matcher
from bot.matching.embeddings import load_encoder
from bot.router import Router
from bot.runtime import jobs
from bot.services import Services, knowledge, learning
from bot.services.audit import Denied
from bot.services.people import by_key
from bot.types import Article, Reply
from tests.bot.test_matching import Org, keys, rank
from tests.helpers import audit_rows, notices, say


def _ask(services: Services, key: str, text: str) -> int:
    """A question logged as `whoknows` logs it; its id."""
    with services.db.unit_of_work() as session:
        asker = by_key(session, key)
        assert asker is not None
        question = QueryLog(
            person_id=asker.id,
            platform="test",
            text=text,
            confident=True,
            suggested="",
            created_at=services.clock(),
        )
        session.add(question)
        session.flush()
        return question.id


def _examples(services: Services) -> list[tuple[str, str, str | None, str | None, bool]]:
    """(source, text, tag, person, still pending) of every labelled example, in order."""
    with services.db.unit_of_work() as session:
        rows = session.scalars(select(LabelledExample).order_by(LabelledExample.id)).all()
        out = []
        for row in rows:
            tag = session.get(Tag, row.tag_id).name if row.tag_id else None
            person = by_key_id(session, row.person_id)
            out.append((row.source.value, row.text, tag, person, row.pending_until is not None))
        return out


def by_key_id(session, person_id: int | None) -> str | None:  # type: ignore[no-untyped-def]
    from bot.db.models import Person

    if person_id is None:
        return None
    person = session.get(Person, person_id)
    return person.key if person is not None else None


def articles(reply: Reply) -> list[tuple[int, str]]:
    return [(e.entry_id, e.title) for e in reply.elements if isinstance(e, Article)]


def _helpful(services: Services, question: int, voter: str, expert: str) -> bool:
    with services.db.unit_of_work() as session:
        voting, helping = by_key(session, voter), by_key(session, expert)
        assert voting is not None and helping is not None
        _, counted = learning.record_helpful(
            session, question, voting, helping.id, services.clock()
        )
        return counted


def test_a_helpful_vote_counts_once_per_question_and_expert(demo: Services) -> None:
    question = _ask(demo, "alex", "customer charged twice for one top-up")
    assert _helpful(demo, question, "alex", "priya") is True
    assert _helpful(demo, question, "alex", "priya") is False  # clicked again
    assert _helpful(demo, question, "alex", "maria") is True  # two colleagues helped
    assert _examples(demo) == [
        ("helpful", "customer charged twice for one top-up", None, "priya", False),
        ("helpful", "customer charged twice for one top-up", None, "maria", False),
    ]
    with demo.db.unit_of_work() as session:
        assert learning.helpful_votes(session, question, by_key(session, "priya").id) == 1  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("voter", "expert", "message"),
    [
        ("maria", "priya", "Only the person who asked"),  # someone else's question
        ("alex", "alex", "cannot mark yourself"),
    ],
)
def test_only_the_asker_says_who_helped_and_never_themself(
    demo: Services, voter: str, expert: str, message: str
) -> None:
    question = _ask(demo, "alex", "customer charged twice for one top-up")
    with pytest.raises(learning.LearningError, match=message):
        _helpful(demo, question, voter, expert)
    assert _examples(demo) == []


def test_a_vote_for_a_question_or_colleague_gone_is_refused_politely(demo: Services) -> None:
    question = _ask(demo, "alex", "customer charged twice")
    with pytest.raises(learning.LearningError, match="no longer kept"):
        _helpful(demo, question + 1000, "alex", "priya")
    with demo.db.unit_of_work() as session:
        priya = by_key(session, "priya")
        assert priya is not None
        priya.deleted_at, gone = demo.clock(), priya.id
    with (
        demo.db.unit_of_work() as session,
        pytest.raises(learning.LearningError, match="no longer here"),
    ):
        alex = by_key(session, "alex")
        assert alex is not None
        learning.record_helpful(session, question, alex, gone, demo.clock())
    assert _examples(demo) == []


def test_a_message_click_counts_once_its_window_passes_without_the_same_question(
    demo: Services,
) -> None:
    kept = _ask(demo, "alex", "porting a number from another network")
    dropped = _ask(demo, "tomasz", "roaming charges in france")
    with demo.db.unit_of_work() as session:
        alex, tomasz = by_key(session, "alex"), by_key(session, "tomasz")
        priya, maria = by_key(session, "priya"), by_key(session, "maria")
        assert alex and tomasz and priya and maria
        now = demo.clock()
        assert learning.record_contact(session, kept, alex, priya.id, now) is True
        assert learning.record_contact(session, kept, alex, priya.id, now) is False  # twice
        assert learning.record_contact(session, dropped, tomasz, maria.id, now) is True
        # Not the asker's own question: no evidence about it.
        assert learning.record_contact(session, kept, tomasz, maria.id, now) is False
    assert [e[4] for e in _examples(demo)] == [True, True]  # pending: not evidence yet
    demo.clock.advance(60)
    _ask(demo, "tomasz", "roaming charges in france still wrong")  # asked again: not settled
    _ask(demo, "alex", "a different thing entirely")
    assert jobs.run_due(demo) == 0  # the window has not passed
    demo.clock.advance(learning.CONTACT_WINDOW.total_seconds())
    assert jobs.run_due(demo) == 2  # one timer per click, each settling all that are due
    assert _examples(demo) == [
        ("contact", "porting a number from another network", None, "priya", False),
    ]


def test_a_resolved_huddle_keeps_its_question_for_its_tags(demo: Services, router: Router) -> None:
    opened = notices(say(demo, router, "alex", "huddle", "chargeback dispute @maria @omar"))
    number = int(opened[0].text.split("#")[1].split()[0])
    say(demo, router, "omar", "huddle", f"reply {number} Check the card statement")
    say(demo, router, "alex", "huddle", f"resolve {number} Disputes | Get the statement")
    other = notices(say(demo, router, "alex", "huddle", "sim swap fraud @maria"))
    tagged = int(other[0].text.split("#")[1].split()[0])
    say(demo, router, "maria", "huddle", f"reply {tagged} Lock the account first")
    say(demo, router, "alex", "huddle", f"resolve {tagged} SIM swaps | Lock it | sim")
    assert _examples(demo) == [
        # No tags given: labelled with the expert who replied (the model picks their tag).
        ("huddle", "chargeback dispute", None, "omar", False),
        ("huddle", "sim swap fraud", "sim", None, False),
    ]


def test_learned_examples_are_never_knowledge_entries(demo: Services, router: Router) -> None:
    with demo.db.unit_of_work() as session:
        entries = session.scalar(select(func.count()).select_from(KnowledgeEntry))
    question = "zanzibar voucher glitch on a quokka plan"
    reply = say(demo, router, "alex", "whoknows", question)
    assert reply.elements
    with demo.db.unit_of_work() as session:
        asked = session.scalar(select(QueryLog.id).where(QueryLog.text == question))
    assert asked is not None
    _helpful(demo, asked, "alex", "priya")
    with demo.db.unit_of_work() as session:
        tag = session.scalar(select(Tag).where(Tag.name == "refunds"))
        lead = by_key(session, "priya")
        assert tag is not None and lead is not None
        learning.describe_tag(
            session, lead, tag, "Money back", ["quokka plan zanzibar refund"], demo.clock()
        )
    with demo.db.unit_of_work() as session:
        assert session.scalar(select(func.count()).select_from(KnowledgeEntry)) == entries
        assert knowledge.search(session, "zanzibar quokka") == []
    # Asked again, the answers shown are the knowledge base's as before: none was learned.
    again = say(demo, router, "alex", "whoknows", question)
    assert articles(again) == articles(reply)
    assert all("quokka" not in title.lower() for _, title in articles(again))
    assert len(_examples(demo)) == 3  # the vote, the description, the example question


def test_a_lead_describes_a_tag_and_gives_its_example_questions(demo: Services) -> None:
    with demo.db.unit_of_work() as session:
        start = revision.current(session)[revision.LEARNING]
        tag = session.scalar(select(Tag).where(Tag.name == "refunds"))
        priya, alex = by_key(session, "priya"), by_key(session, "alex")
        assert tag is not None and priya is not None and alex is not None
        kept = learning.describe_tag(
            session,
            priya,
            tag,
            "Money back to the customer",
            ["refund to a closed card", "refund to a closed card", "partial refund"],
            demo.clock(),
        )
        assert kept == 2  # the same question twice is one
        assert tag.description == "Money back to the customer"
        with pytest.raises(Denied):
            learning.describe_tag(session, alex, tag, "Mine", None, demo.clock())
        with pytest.raises(learning.LearningError, match="one line of at most"):
            learning.describe_tag(session, priya, tag, "x" * 400, None, demo.clock())
    with demo.db.unit_of_work() as session:
        assert revision.current(session)[revision.LEARNING] > start
        tag = session.scalar(select(Tag).where(Tag.name == "refunds"))
        assert tag is not None
        # New examples replace the old ones; the description stays.
        learning.describe_tag(
            session, by_key(session, "priya"), tag, None, ["late refund"], demo.clock()
        )  # type: ignore[arg-type]
        assert learning.tag_examples(session, tag) == ["late refund"]
        assert tag.description == "Money back to the customer"
    lead = [(e[0], e[1], e[2]) for e in _examples(demo)]
    assert lead == [
        ("lead", "Money back to the customer", "refunds"),
        ("lead", "late refund", "refunds"),
    ]
    assert [a.action for a in audit_rows(demo)].count("describe_tag") == 2
    assert ExampleSource.LEAD.value == "lead"


def test_one_helpful_mark_teaches_a_tags_only_org_where_a_question_goes(
    services: Services,
) -> None:
    """No knowledge at all, and a tag name the question does not resemble: marked once
    for a similar question, the right colleague comes first (with the defaults)."""
    if load_encoder() is None:
        pytest.skip("semantic extra not installed")
    with services.db.unit_of_work() as session:
        org = Org(session)
        names = ["pac code", "contract cancellation", "roaming", "device insurance", "billing"]
        for number, name in enumerate(names):
            org.tag(name)
            org.person(f"p{number}", (name, 3, True))
        org.person("asker")
    matcher = Matcher(load_encoder())
    question = "a caller switching to another operator wants to keep their number"
    assert keys(rank(services, question, matcher=matcher))[0] != "p0"  # cold: the wrong one
    asked = _ask(services, "asker", "customer is leaving us and wants to take their number")
    assert _helpful(services, asked, "asker", "p0")
    assert keys(rank(services, question, matcher=matcher))[0] == "p0"
