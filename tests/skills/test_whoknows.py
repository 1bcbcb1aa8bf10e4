"""Who knows: ranked colleagues with reasons, knowledge first, gaps recorded, hostile text safe."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.db.models import LabelledExample, Person, QueryLog
from bot.router import Router
from bot.runtime import jobs
from bot.services import Services, learning
from bot.types import Article, Button, Command, Notice, Reply, Text
from tests.helpers import cards, notices, person_id, press, say


def _queries(services: Services) -> list[QueryLog]:
    with services.db.unit_of_work() as session:
        return list(session.scalars(select(QueryLog).order_by(QueryLog.id)))


def test_refunds_ranks_refund_experts_with_reasons_and_presence(
    demo: Services, router: Router
) -> None:
    reply = say(demo, router, "alex", "whoknows", "refunds")
    experts = cards(reply)
    assert experts, reply
    # priya (5, verified, available) and maria (4, verified, available) lead the list.
    assert [card.key for card in experts[:2]] == ["priya", "maria"]
    for card in experts:
        assert any(tag.name == "refunds" for tag in card.tags) or "answer" in card.reason
        assert card.reason
        assert card.presence.local_time
    assert "refunds level 5" in experts[0].reason


def test_knowledge_comes_before_people(demo: Services, router: Router) -> None:
    reply = say(demo, router, "alex", "whoknows", "refund for a prepaid top-up")
    kinds = [type(element) for element in reply.elements]
    assert Article in kinds
    first_card = next(i for i, e in enumerate(reply.elements) if type(e).__name__ == "PersonCard")
    assert kinds.index(Article) < first_card
    articles = [e for e in reply.elements if isinstance(e, Article)]
    assert "top-up" in articles[0].title.lower()


def test_the_asker_is_never_suggested(demo: Services, router: Router) -> None:
    keys = [card.key for card in cards(say(demo, router, "priya", "whoknows", "refunds"))]
    assert "priya" not in keys
    assert keys


def test_available_people_come_before_unavailable_ones_of_similar_relevance(
    demo: Services, router: Router
) -> None:
    experts = cards(say(demo, router, "alex", "whoknows", "refunds"))
    # tomasz (refunds 2) is busy, omar (refunds 1) available: equal bands are ordered by presence.
    tiers = {"available": 0, "busy": 1, "on_call": 1, "away": 2, "off": 3, "off_shift": 3}
    by_band: dict[int, list[int]] = {}
    best = experts[0].score
    for card in experts:
        by_band.setdefault(round(card.score / best * 4), []).append(tiers[card.presence.status])
    for band in by_band.values():
        assert band == sorted(band)


def test_every_question_is_logged_and_unknown_topics_are_gaps(
    demo: Services, router: Router
) -> None:
    say(demo, router, "alex", "whoknows", "refunds")
    reply = say(demo, router, "alex", "whoknows", "zebra crossing lollipop")
    assert any("knowledge gap" in n.text for n in notices(reply))
    logged = _queries(demo)
    assert [(q.text, q.confident) for q in logged] == [
        ("refunds", True),
        ("zebra crossing lollipop", False),
    ]
    assert logged[0].suggested.startswith("priya,maria")


def test_a_typo_still_finds_the_tag(demo: Services, router: Router) -> None:
    experts = cards(say(demo, router, "alex", "whoknows", "chargbacks"))
    assert experts and any(t.name == "chargebacks" for t in experts[0].tags)


def test_words_alone_are_a_question_and_near_misses_get_a_suggestion(
    demo: Services, router: Router
) -> None:
    assert cards(say(demo, router, "alex", "refunds", ""))
    reply = say(demo, router, "alex", "expertse", "")
    assert "Did you mean `expertise`" in notices(reply)[0].text
    assert "Tell me the topic" in notices(say(demo, router, "alex", "whoknows", "   "))[0].text


HOSTILE = [
    "<!channel> <!here> @everyone <@U123> refunds",
    "%' OR 1=1 -- ; DROP TABLE person; _ \\",
    "refunds \x00 with a NUL",
    "remboursement 💸🔥 refunds ✅",
    "استرداد الأموال refunds החזר כספי",
    "refunds " + "x" * 50_000,
]


@pytest.mark.reliability(14)
def test_hostile_text_gets_a_clear_reply_and_breaks_nothing(demo: Services, router: Router) -> None:
    for text in HOSTILE:
        reply = say(demo, router, "alex", "whoknows", text)
        assert isinstance(reply, Reply)
        assert not [n for n in notices(reply) if n.severity == "error"], (text[:40], reply)
        assert any(isinstance(e, Text) for e in reply.elements)
    long_reply = say(demo, router, "alex", "whoknows", HOSTILE[-1])
    assert any(isinstance(e, Notice) and "first 2,000" in e.text for e in long_reply.elements)
    # The literal SQL was searched for, not run: everyone is still there.
    assert cards(say(demo, router, "alex", "whoknows", "refunds"))
    assert len(_queries(demo)) == len(HOSTILE) + 2


def test_someone_removed_from_the_directory_cannot_ask(demo: Services, router: Router) -> None:
    gone = person_id(demo, "omar")
    with demo.db.unit_of_work() as session:
        session.get(Person, gone).deleted_at = datetime.now(UTC)
    for asker in (gone, 999_999):  # deleted, and never known
        reply = router.dispatch(Command("test", asker, "whoknows", "refunds"), demo)
        assert [n.severity for n in notices(reply)] == ["warning"]
        assert "don't know anyone called 'you'" in notices(reply)[0].text
        assert not cards(reply)
    assert _queries(demo) == []  # nothing logged for them


def test_work_after_the_reply_runs_in_the_commands_own_transaction(
    demo: Services, router: Router
) -> None:
    seen: list[tuple[int, str]] = []
    before = len(_queries(demo))

    def then(session: Session, reply: Reply) -> None:
        # The question's log row is not committed yet, but this transaction sees it.
        logged = session.scalars(select(QueryLog).order_by(QueryLog.id.desc())).first()
        assert logged is not None
        with demo.db.reading() as other:
            assert len(list(other.scalars(select(QueryLog)))) == before
        seen.append((len(cards(reply)), logged.text))

    command = Command("test", person_id(demo, "alex"), "whoknows", "refunds")
    reply = router.dispatch(command, demo, then=then)
    assert seen == [(len(cards(reply)), "refunds")] and cards(reply)
    assert len(_queries(demo)) == before + 1
    # A reply made without a unit of work (an unknown command) runs nothing after it.
    router.dispatch(Command("test", person_id(demo, "alex"), "whoknowz", ""), demo, then=then)
    assert len(seen) == 1


def _examples(services: Services) -> list[tuple[str, int | None, bool]]:
    with services.db.unit_of_work() as session:
        rows = session.scalars(select(LabelledExample).order_by(LabelledExample.id))
        return [(r.source.value, r.person_id, r.pending_until is not None) for r in rows]


def test_each_expert_card_has_a_helpful_button_that_counts_once(
    demo: Services, router: Router
) -> None:
    experts = cards(say(demo, router, "alex", "whoknows", "refunds"))
    assert experts and all([b.label for b in c.buttons] == ["Helpful"] for c in experts)
    first, second = experts[0], experts[1]
    (helpful,) = first.buttons
    thanks = notices(press(demo, router, "alex", helpful))
    assert thanks[0].severity == "success" and first.name in thanks[0].text
    again = notices(press(demo, router, "alex", helpful))
    assert "already said" in again[0].text
    (other,) = second.buttons
    press(demo, router, "alex", other)
    # Someone who did not ask cannot say it helped them.
    refused = notices(press(demo, router, "maria", helpful))
    assert refused[0].severity == "warning" and "Only the person who asked" in refused[0].text
    assert _examples(demo) == [
        ("helpful", first.person_id, False),
        ("helpful", second.person_id, False),
    ]
    stale = notices(press(demo, router, "alex", Button("Helpful", helpful.action_id, "x:y")))
    assert "no longer points at a question" in stale[0].text


def test_a_message_click_on_a_card_is_kept_until_its_window_passes(
    demo: Services, router: Router
) -> None:
    (first, *_) = cards(say(demo, router, "alex", "whoknows", "refunds"))
    assert first.contact is not None
    assert press(demo, router, "alex", first.contact).elements == ()  # the chat opens anyway
    assert _examples(demo) == [("contact", first.person_id, True)]
    demo.clock.advance(learning.CONTACT_WINDOW.total_seconds() + 1)
    assert jobs.run_due(demo) == 1
    assert _examples(demo) == [("contact", first.person_id, False)]
