"""The matching engine: each signal, proficiency, availability rules and confidence."""

from __future__ import annotations

import dataclasses
import random
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.config import Settings
from bot.data.transfer import import_people
from bot.db import revision
from bot.db.models import (
    Embedding,
    KnowledgeEntry,
    Person,
    QueryLog,
    Role,
    Skill,
    SkillSource,
    Status,
    Tag,
    TagAlias,
)
from bot.matching import STALE_SHARE, Matcher, Ranking
from bot.matching.embeddings import load_encoder
from bot.matching.vectors import INLINE_LIMIT
from bot.services import Services, knowledge, presence
from bot.services.accounts import provision
from bot.services.expertise import SkillSpec, tag_person
from bot.services.people import by_key
from tests.conftest import NOW

needs_model = pytest.mark.skipif(load_encoder() is None, reason="semantic extra not installed")


class Org:
    """A small org built in one unit of work: people, tags and skills by name."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.tags: dict[str, Tag] = {}
        self.people: dict[str, Person] = {}

    def tag(self, name: str, parent: str | None = None, aliases: tuple[str, ...] = ()) -> Tag:
        tag = Tag(name=name, parent=self.tags.get(parent) if parent else None)
        tag.aliases = [TagAlias(alias=a) for a in aliases]
        self.session.add(tag)
        self.tags[name] = tag
        return tag

    def person(self, key: str, *skills: tuple[str, int, bool], tz: str = "Europe/London") -> Person:
        person = Person(key=key, display_name=key.title(), timezone=tz, role=Role.AGENT)
        self.session.add(person)
        for name, level, verified in skills:
            self.session.add(
                Skill(
                    person=person,
                    tag=self.tags[name],
                    level=level,
                    source=SkillSource.LEAD if verified else SkillSource.SELF,
                    verified_at=NOW if verified else None,
                )
            )
        self.people[key] = person
        return person


def rank(services: Services, query: str, *, matcher: Matcher | None = None, **kw) -> Ranking:  # type: ignore[no-untyped-def]
    with services.db.unit_of_work() as session:
        return (matcher or services.matcher).rank(session, query, kw.pop("now", NOW), **kw)


def keys(ranking: Ranking) -> list[str]:
    return [card.key for card in ranking.experts]


@pytest.fixture
def org(services: Services) -> Services:
    with services.db.unit_of_work() as session:
        org = Org(session)
        org.tag("billing")
        org.tag("refunds", parent="billing", aliases=("money back",))
        org.tag("chargebacks", parent="billing")
        org.tag("prepaid top-up", aliases=("recharge",))
        org.tag("sim")
        org.person("ana", ("refunds", 5, True))
        org.person("ben", ("refunds", 5, False))
        org.person("cy", ("refunds", 2, True))
        org.person("dee", ("chargebacks", 4, True))
        org.person("eli", ("prepaid top-up", 3, True), ("refunds", 1, False))
        org.person("fay", ("billing", 4, True))
        org.person("gus", ("sim", 4, True))
    return services


@pytest.fixture
def lexical() -> Matcher:
    """A matcher without sentence vectors, with an index cache of its own."""
    return Matcher(None)


def test_a_named_tag_ranks_its_holders_by_level_then_verification(
    org: Services, lexical: Matcher
) -> None:
    ranking = rank(org, "refunds", matcher=lexical)
    assert keys(ranking)[:3] == ["ana", "ben", "cy"]
    assert ranking.confident
    assert ranking.experts[0].reason == "refunds level 5, verified"
    assert "self-declared" in ranking.experts[1].reason


def test_plurals_aliases_typos_and_multi_word_tags(org: Services, lexical: Matcher) -> None:
    assert keys(rank(org, "a refund please", matcher=lexical))[0] == "ana"
    alias = rank(org, "customer wants their money back", matcher=lexical)
    assert keys(alias)[0] == "ana" and "another name" in alias.experts[0].reason
    typo = rank(org, "chargbacks on a card", matcher=lexical)
    assert keys(typo)[0] == "dee" and "close to what you typed" in typo.experts[0].reason
    assert keys(rank(org, "prepaid top-up failed", matcher=lexical))[0] == "eli"
    # Half of a multi-word name is not that tag.
    assert "eli" not in keys(rank(org, "prepaid phone", matcher=lexical))


def test_parent_and_child_tags_lend_each_other_strength(org: Services, lexical: Matcher) -> None:
    broad = rank(org, "billing", matcher=lexical)
    assert keys(broad)[0] == "fay"
    assert {"ana", "dee"} <= set(keys(broad))  # children of billing
    narrow = rank(org, "refunds", matcher=lexical, limit=10)
    assert "fay" in keys(narrow)  # the parent, lower
    assert keys(narrow).index("fay") > keys(narrow).index("cy")
    assert "broader topic" in narrow.experts[keys(narrow).index("fay")].reason


def add_answer_by_gus(services: Services) -> int:
    """A knowledge entry gus wrote, on a topic no tag names; its id."""
    with services.db.unit_of_work() as session:
        entry, _ = knowledge.add_entry(
            session,
            "Reversing a duplicate direct debit collection",
            "Raise an indemnity claim with the bank after checking the mandate reference.",
            [],
            [by_key(session, "gus")],
        )
        session.flush()
        return entry.id


def test_knowledge_evidence_credits_authors(org: Services, lexical: Matcher) -> None:
    add_answer_by_gus(org)
    ranking = rank(org, "duplicate direct debit collection", matcher=lexical)
    assert keys(ranking)[0] == "gus"
    assert "wrote answers to similar questions" in ranking.experts[0].reason
    assert ranking.articles and ranking.articles[0].title.startswith("Reversing")


@needs_model
def test_meaning_without_shared_words(org: Services) -> None:
    ranking = rank(org, "reimbursement of an overpaid amount")
    assert keys(ranking)[0] in {"ana", "ben"}
    assert "close in meaning" in ranking.experts[0].reason


def test_the_asker_and_deleted_people_are_never_suggested(org: Services, lexical: Matcher) -> None:
    with org.db.unit_of_work() as session:
        by_key(session, "ben").deleted_at = NOW
    ranking = rank(org, "refunds", matcher=lexical, requester_id=org_person_id(org, "ana"))
    assert "ana" not in keys(ranking) and "ben" not in keys(ranking)
    assert keys(ranking)[0] == "cy"


def test_a_busy_status_orders_below_available_peers_until_it_expires(
    org: Services, lexical: Matcher
) -> None:
    with org.db.unit_of_work() as session:
        ana = by_key(session, "ana")
        presence.set_status(session, ana, Status.BUSY, NOW, timedelta(minutes=30))
    now_busy = keys(rank(org, "refunds", matcher=lexical))
    # Everyone available in ana's relevance band now comes first, ana still shows.
    assert now_busy[0] == "ben" and now_busy.index("ana") > now_busy.index("cy")
    later = rank(org, "refunds", matcher=lexical, now=NOW + timedelta(minutes=31))
    assert keys(later)[:2] == ["ana", "ben"]


def test_people_off_shift_in_their_time_zone_still_show_but_lower(
    org: Services, lexical: Matcher
) -> None:
    with org.db.unit_of_work() as session:
        by_key(session, "ana").timezone = "Asia/Tokyo"  # 19:00 there
    ranking = rank(org, "refunds", matcher=lexical, limit=10)
    assert keys(ranking)[0] == "ben" and keys(ranking).index("ana") > keys(ranking).index("cy")
    card = ranking.experts[keys(ranking).index("ana")]
    assert (card.presence.status, card.presence.local_time) == ("off_shift", "19:00")


def test_fairness_spreads_questions_away_from_the_usual_star(
    org: Services, lexical: Matcher
) -> None:
    with org.db.unit_of_work() as session:
        for minute in range(20):
            session.add(
                QueryLog(
                    platform="test",
                    text="refunds",
                    confident=True,
                    suggested="ana,ben",
                    created_at=NOW - timedelta(minutes=minute),
                )
            )
    now = keys(rank(org, "refunds", matcher=lexical, limit=10))
    assert now[0] == "ben" and now.index("ana") > now.index("cy")
    # An hour later the streak no longer counts.
    assert keys(rank(org, "refunds", matcher=lexical, now=NOW + timedelta(hours=2)))[0] == "ana"


def test_a_question_nobody_matches_is_not_confident_and_suggests_nothing_wrong(
    org: Services, lexical: Matcher
) -> None:
    ranking = rank(org, "zebra crossing lollipop", matcher=lexical)
    assert not ranking.confident
    assert ranking.experts == []


@needs_model
def test_a_question_close_to_no_tag_reaches_the_nearest_ones_but_is_not_confident(
    org: Services,
) -> None:
    # Every tag name is far from this (cosine < SEMANTIC_FLOOR), yet some are nearer
    # than others: their holders are shown, hedged, and the topics named.
    ranking = rank(org, "my phone number moved to a new network")
    assert not ranking.confident
    assert ranking.experts and ranking.nearest_tags
    first = ranking.experts[0]
    assert any(tag.name in ranking.nearest_tags for tag in first.tags)
    assert all(s.relevance > 0 for s in ranking.tags)


def test_the_index_follows_changes_made_through_any_session(org: Services) -> None:
    matcher = Matcher(None)
    assert "gus" not in keys(rank(org, "refunds", matcher=matcher))
    with org.db.unit_of_work() as session:
        gus = by_key(session, "gus")
        tag_person(session, gus, gus, SkillSpec("refunds", 5), NOW)
    assert "gus" in keys(rank(org, "refunds", matcher=matcher, limit=10))


def test_only_changes_the_index_holds_make_workers_reload_it(org: Services) -> None:
    def people_revision() -> int:
        with org.db.reading() as session:
            return revision.current(session)[revision.PEOPLE]

    start = people_revision()
    with org.db.unit_of_work() as session:  # first contact: someone new, no skills yet
        newcomer = provision(session, "slack", "U777", name="New Person", now=NOW)
        by_key(session, "gus").name = "Gus Renamed"
    assert people_revision() == start
    with org.db.unit_of_work() as session:
        tag_person(session, newcomer, newcomer, SkillSpec("sim", 2), NOW)
    assert people_revision() == start + 1
    with org.db.unit_of_work() as session:
        provision(session, "slack", "U777", name="New Person", deleted=True, now=NOW)
    assert people_revision() == start + 2


def test_demo_answers_a_customer_problem_in_plain_words(demo: Services) -> None:
    ranking = rank(demo, "customer topped up the wrong number and wants the money back")
    assert ranking.confident
    assert ranking.articles[0].title == "Refund for a prepaid top-up made to the wrong number"
    assert keys(ranking)[0] in {"maria", "ewa", "priya", "joy"}


def org_person_id(services: Services, key: str) -> int:
    with services.db.unit_of_work() as session:
        return by_key(session, key).id


def test_working_hours_default_and_clock_are_respected() -> None:
    person = Person(
        key="x",
        display_name="X",
        timezone="UTC",
        work_start_min=540,
        work_end_min=1020,
        work_days="12345",
    )
    assert presence.on_shift(person, datetime(2026, 11, 23, 9, 0, tzinfo=NOW.tzinfo))
    assert not presence.on_shift(person, datetime(2026, 11, 22, 12, 0, tzinfo=NOW.tzinfo))  # Sunday


def test_recent_answers_count_for_more_than_old_ones(org: Services, lexical: Matcher) -> None:
    with org.db.unit_of_work() as session:
        for key, updated in (("gus", NOW - timedelta(days=3 * 365)), ("dee", NOW)):
            entry, _ = knowledge.add_entry(
                session,
                f"Porting a number with a PAC code ({key})",
                "Ask for the PAC code, check it matches the number, submit the port.",
                [],
                [by_key(session, key)],
            )
            session.flush()
            entry.updated_at = updated
    ranking = rank(org, "porting a number with a PAC code", matcher=lexical)
    assert keys(ranking)[:2] == ["dee", "gus"]


def search_evidence(services: Services, matcher: Matcher, query: str) -> list[tuple[str, float]]:
    """The matcher's full-text evidence for a question, as (title, score), best first."""
    with services.db.unit_of_work() as session:
        _, index = matcher.cache.get(session, NOW)
        hits = index.fulltext.search(query, 40)
        titles = dict(session.execute(select(KnowledgeEntry.id, KnowledgeEntry.title)).all())
        return [(titles[entry_id], round(score, 3)) for entry_id, score in hits]


def test_full_text_evidence_favours_rare_words_and_titles_and_follows_edits(
    org: Services, lexical: Matcher
) -> None:
    with org.db.unit_of_work() as session:
        fay, gus, dee = (by_key(session, key) for key in ("fay", "gus", "dee"))
        for i in range(6):
            knowledge.add_entry(
                session, f"Bill question {i}", f"A bill query, case {i}.", [], [fay]
            )
        knowledge.add_entry(
            session, "Bill dispute", "Raise an indemnity claim for the bill.", [], [gus]
        )
        # The same words, "escrow" in the title of one and in the body of the other.
        knowledge.add_entry(session, "Escrow release", "Checklist for the request.", [], [dee])
        knowledge.add_entry(session, "Release checklist", "Escrow for the request.", [], [dee])
    # Every entry with either word is found; the one with the rare word comes first.
    found = search_evidence(org, lexical, "indemnity on a bill")
    assert found[0] == ("Bill dispute", 1.0)
    assert {title for title, _ in found[1:]} == {f"Bill question {i}" for i in range(6)}
    assert all(score < 0.5 for _, score in found[1:])
    # A word in the title counts twice.
    title_first = search_evidence(org, lexical, "escrow")
    assert [title for title, _ in title_first] == ["Escrow release", "Release checklist"]
    assert title_first[1][1] < 1.0
    assert search_evidence(org, lexical, "zebra") == []
    # An edit in another unit of work moves the knowledge revision on: the same
    # matcher, not restarted, searches the new text and credits its author.
    assert keys(rank(org, "kangaroo courier", matcher=lexical)) == []
    with org.db.unit_of_work() as session:
        entry = session.scalar(select(KnowledgeEntry).where(KnowledgeEntry.title == "Bill dispute"))
        body = "Send the kangaroo courier form."
        knowledge.edit(
            session, entry, by_key(session, "gus"), title=entry.title, body=body, tags=None
        )
    assert search_evidence(org, lexical, "kangaroo courier") == [("Bill dispute", 1.0)]
    assert search_evidence(org, lexical, "indemnity") == []
    assert keys(rank(org, "kangaroo courier", matcher=lexical))[0] == "gus"


def test_a_large_knowledge_index_is_rebuilt_beside_the_one_answering(org: Services) -> None:
    matcher = Matcher(None, reading=org.db.reading)
    matcher.cache.rebuild_beside_from = 0  # every index counts as large here
    question = "duplicate direct debit collection"
    assert not rank(org, question, matcher=matcher).articles  # the first load: in place
    add_answer_by_gus(org)
    # A set-based write that does not say which entries it changed: the index reloads.
    with org.db.unit_of_work() as session:
        revision.bump(session, revision.KNOWLEDGE)
    # The question that finds the index behind is answered at once, by the index it had,
    # while the new one is built on the side; the questions after it get the new one.
    loaded = matcher.cache.knowledge
    assert not rank(org, question, matcher=matcher).articles
    matcher.cache.wait()
    assert matcher.cache.knowledge is not loaded
    ranking = rank(org, question, matcher=matcher)
    assert ranking.articles and ranking.articles[0].title.startswith("Reversing")
    assert keys(ranking)[0] == "gus"


def test_a_small_knowledge_index_is_rebuilt_before_the_question_is_answered(
    org: Services,
) -> None:
    matcher = Matcher(None, reading=org.db.reading)
    question = "duplicate direct debit collection"
    assert not rank(org, question, matcher=matcher).articles
    add_answer_by_gus(org)
    assert rank(org, question, matcher=matcher).articles


@needs_model
def test_vectors_made_while_a_question_is_ranked_are_stored_for_every_later_load(
    org: Services,
) -> None:
    matcher = Matcher(load_encoder(), reading=org.db.reading)
    with org.db.reading() as session:  # a question ranks in a read-only snapshot
        matcher.rank(session, "refunds", NOW)
    entry_id = add_answer_by_gus(org)
    with org.db.reading() as session:
        ranking = matcher.rank(session, "duplicate direct debit collection", NOW)
    assert ranking.articles and ranking.articles[0].entry_id == entry_id
    # Stored, though the question's snapshot only reads: the next load encodes nothing.
    with org.db.reading() as session:
        stored = session.scalars(
            select(Embedding.item_id).where(
                Embedding.kind == "knowledge", Embedding.item_id == entry_id
            )
        ).all()
    assert stored == [entry_id]


# --- freshness and what a reason rests on ---------------------------------------------


def _declared(services: Services, key: str, tag: str, at: datetime) -> None:
    with services.db.unit_of_work() as session:
        skill = session.scalar(
            select(Skill)
            .join(Tag)
            .where(Skill.person_id == by_key(session, key).id, Tag.name == tag)
        )
        skill.updated_at = at


def _card(ranking: Ranking, key: str):  # type: ignore[no-untyped-def]
    return next(card for card in ranking.experts if card.key == key)


def test_a_self_declared_skill_without_evidence_for_180_days_counts_less_and_says_so(
    org: Services, lexical: Matcher
) -> None:
    # ben declared refunds 5 exactly 180 days before NOW, and has answered nothing since.
    _declared(org, "ben", "refunds", NOW - timedelta(days=180))
    fresh = rank(org, "refunds", matcher=lexical, limit=10)
    assert keys(fresh)[:3] == ["ana", "ben", "cy"]
    assert _card(fresh, "ben").reason == "refunds level 5, self-declared"
    # One second later it has gone without evidence for longer than 180 days.
    later = NOW + timedelta(seconds=1)
    stale = rank(org, "refunds", matcher=lexical, limit=10, now=later)
    ben = _card(stale, "ben")
    assert (
        ben.reason == "refunds level 5, self-declared, no answers on it for 180 days (counts less)"
    )
    assert ben.basis == "self-declared"
    # It counts STALE_SHARE of its strength: below every fresh holder of the topic,
    # verified or not, whatever their level (cy 2 ✓, eli 1).
    assert ben.score == pytest.approx(_card(fresh, "ben").score * STALE_SHARE, abs=1e-4)
    assert keys(stale)[:4] == ["ana", "cy", "eli", "ben"]
    # Verified skills never age in the ranking (their lead is asked instead).
    _declared(org, "ana", "refunds", NOW - timedelta(days=900))
    assert keys(rank(org, "refunds", matcher=lexical, now=later))[0] == "ana"


def test_an_answer_on_the_topic_keeps_a_self_declared_skill_fresh(
    org: Services, lexical: Matcher
) -> None:
    _declared(org, "ben", "refunds", NOW - timedelta(days=400))
    with org.db.unit_of_work() as session:
        entry, _ = knowledge.add_entry(
            session,
            "Refunding a double charge",
            "Refund the second charge to the card it came from.",
            [session.scalar(select(Tag).where(Tag.name == "refunds"))],
            [by_key(session, "ben")],
        )
        session.flush()
        entry.updated_at = NOW - timedelta(days=179)
    ranking = rank(org, "refunds", matcher=lexical, limit=10)
    assert set(keys(ranking)[:2]) == {"ana", "ben"}  # his answer is evidence too
    assert _card(ranking, "ben").reason.startswith("refunds level 5, self-declared;")
    # An answer on another topic is no evidence for this one.
    with org.db.unit_of_work() as session:
        entry = session.scalar(
            select(KnowledgeEntry).where(KnowledgeEntry.title.like("Refunding%"))
        )
        entry.tags = [session.scalar(select(Tag).where(Tag.name == "sim"))]
        entry.updated_at = NOW - timedelta(days=179)
    assert (
        "no answers on it for 400 days"
        in _card(rank(org, "refunds", matcher=lexical, limit=10), "ben").reason
    )
    # Tagged again it is evidence again; deleted, it is not.
    with org.db.unit_of_work() as session:
        entry = session.scalar(
            select(KnowledgeEntry).where(KnowledgeEntry.title.like("Refunding%"))
        )
        entry.tags = [session.scalar(select(Tag).where(Tag.name == "refunds"))]
        entry.updated_at = NOW - timedelta(days=179)
    assert "self-declared;" in _card(rank(org, "refunds", matcher=lexical, limit=10), "ben").reason
    with org.db.unit_of_work() as session:
        entry = session.scalar(
            select(KnowledgeEntry).where(KnowledgeEntry.title.like("Refunding%"))
        )
        session.delete(entry)
    assert (
        "no answers on it for 400 days"
        in _card(rank(org, "refunds", matcher=lexical, limit=10), "ben").reason
    )


def test_how_long_a_self_declared_skill_stays_fresh_is_a_setting(org: Services) -> None:
    _declared(org, "ben", "refunds", NOW - timedelta(days=31))
    assert (
        "counts less"
        not in _card(rank(org, "refunds", matcher=Matcher(None), limit=10), "ben").reason
    )
    month = Matcher(None, stale_after=timedelta(days=30))
    assert (
        "no answers on it for 31 days"
        in _card(rank(org, "refunds", matcher=month, limit=10), "ben").reason
    )
    settings = Settings.from_env(
        {"WHOKNOWS_STALE_SELF_DECLARED_DAYS": "30"}, database_url="sqlite://"
    )
    assert settings.stale_self_declared_days == 30
    assert Settings.from_env({}, database_url="sqlite://").stale_self_declared_days == 180
    with pytest.raises(ValueError, match="WHOKNOWS_REVERIFY_AFTER_DAYS"):
        Settings.from_env({"WHOKNOWS_REVERIFY_AFTER_DAYS": "a year"}, database_url="sqlite://")
    services = Services(
        org.db, dataclasses.replace(org.settings, stale_self_declared_days=30, semantic=False)
    )
    assert services.matcher.stale_after == timedelta(days=30)


def test_reasons_say_verified_self_declared_or_earned(org: Services, lexical: Matcher) -> None:
    ranking = rank(org, "refunds", matcher=lexical, limit=10)
    assert (_card(ranking, "ana").basis, _card(ranking, "ben").basis) == (
        "verified",
        "self-declared",
    )
    # Answers on a topic someone holds no tag for: earned.
    with org.db.unit_of_work() as session:
        hal = Person(key="hal", display_name="Hal", timezone="Europe/London", role=Role.AGENT)
        session.add(hal)
        knowledge.add_entry(
            session,
            "Chargeback from a card issuer abroad",
            "Upload the receipt to the chargeback case within seven days.",
            [session.scalar(select(Tag).where(Tag.name == "chargebacks"))],
            [hal],
        )
    earned = _card(rank(org, "chargeback from a card issuer abroad", matcher=lexical), "hal")
    assert earned.basis == "earned"
    assert earned.reason == (
        "earned: wrote answers to similar questions on chargebacks, not tagged with it yet"
    )
    assert earned.tags == ()
    add_answer_by_gus(org)  # on no tag at all
    gus = _card(rank(org, "duplicate direct debit collection", matcher=lexical), "gus")
    assert (gus.basis, gus.reason) == (
        "earned",
        "earned: wrote answers to similar questions, not tagged for them",
    )


def test_a_question_that_is_a_tags_name_puts_its_holders_first(
    demo: Services, tmp_path: Path
) -> None:
    """Beside the demo org's refund experts (who wrote many answers), 300 imported people
    hold three of 400 tags `tag1` … `tag400`: asked "tag1", the holders of tag1 come
    before anyone a neighbouring tag (`tag10`, `tag12` …) or an answer's evidence brings."""
    rng = random.Random(1)
    rows = ["id,name,team,timezone,skills"]
    for n in range(300):
        held = ";".join(f"tag{rng.randint(1, 400)}:{rng.randint(1, 5)}" for _ in range(3))
        rows.append(f"u{n},User {n},Team {n % 5},Europe/London,{held}")
    source = tmp_path / "tags.csv"
    source.write_text("\n".join(rows) + "\n", encoding="utf-8")
    assert import_people(demo.db, source, NOW).ok
    with demo.db.reading() as session:  # the first question finds 400 new tags: encoded beside
        demo.matcher.rank(session, "tag1", NOW)
    demo.matcher.cache.wait()
    holders = {
        row.split(",")[0]
        for row in rows[1:]
        if "tag1" in {skill.split(":")[0] for skill in row.split(",")[4].split(";")}
    }
    assert holders
    for question in ("tag1", "Tag1?"):
        with demo.db.reading() as session:
            ranking = demo.matcher.rank(session, question, NOW, limit=len(holders) + 3)
        keys = [card.key for card in ranking.experts]
        assert set(keys[: len(holders)]) == holders, (question, keys)
        assert ranking.confident


@needs_model
def test_an_imports_new_tags_are_encoded_beside_the_index_not_in_a_question(
    services: Services, tmp_path: Path
) -> None:
    """An import stores no vectors (it loads no model). The question that finds more new
    tags than it may encode ranks without their vectors, and the index encodes them on a
    thread of its own, then uses them."""
    tags = INLINE_LIMIT + 10
    rows = [f"p{n},P {n},,UTC,topic number {n}:3" for n in range(tags)]
    source = tmp_path / "people.csv"
    source.write_text("id,name,team,timezone,skills\n" + "\n".join(rows) + "\n", encoding="utf-8")
    assert import_people(services.db, source, NOW).ok

    def stored() -> int:
        with services.db.reading() as session:
            return session.scalar(
                select(func.count()).select_from(Embedding).where(Embedding.kind == "tag")
            )

    assert stored() == 0
    cache = services.matcher.cache
    with services.db.reading() as session:
        first, _ = cache.get(session, NOW)
    assert (len(first.tag_ids), first.tags_without_vectors) == (0, tags)
    cache.wait()
    assert stored() == tags
    with services.db.reading() as session:
        later, _ = cache.get(session, NOW)
        ranking = services.matcher.rank(session, "topic number 7", NOW)
    assert (len(later.tag_ids), later.tags_without_vectors) == (tags, 0)
    assert later.tag_vectors is not None and later.tag_vectors.shape[0] == tags
    assert any(signal.how == "similar" for signal in ranking.tags)  # by their vectors
