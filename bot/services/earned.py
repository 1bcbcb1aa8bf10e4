"""Expertise that grows: skills earned from evidence, and skills gone quiet.

**Earned.** whoknows sees who helps: the huddle threads someone replied in that were
resolved, the answers they wrote, and colleagues' "helpful" votes on those answers.
Per person and tag that evidence adds up to points (`POINTS`; evidence of the last
`FULL_WEIGHT_DAYS` counts whole, older halves every `HALF_LIFE_DAYS` more). From
`SUGGEST_FROM` points the skill is suggested, at the level the points reach
(`LEVELS`), to a lead of the person's team (or an admin) when the person does not
hold it or holds it lower. The lead accepts (verified at that level), sets another
level, or dismisses it (out of the suggestions for `DISMISS_DAYS`); each decision is
a `SkillDecision` row and an audit entry.

**Freshness.** A verified skill with no evidence since it was verified for
`Settings.reverify_after_days` is listed for its team's leads to confirm or lower;
an hourly sweep sends each lead a direct message listing theirs, at most once a
week (`REMIND_EVERY`) and during their working hours. (Self-declared skills gone
quiet count less in the ranking: `bot.matching`.) Nothing is removed or lowered
without a person deciding.

Who sees and decides is who may verify the person's expertise, and nobody on their own:
accepting a suggestion, setting another level and re-verifying verify the skill
(`permissions.require_verifier`, audited as each act); dismissing one has its rule
(`permissions.require_suggestion_dismisser`). `docs/permissions.md` has them all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session

from bot import messages
from bot.db.models import (
    HelpfulVote,
    Huddle,
    HuddleParticipant,
    HuddleState,
    Job,
    KnowledgeAuthor,
    KnowledgeEntry,
    KnowledgeTag,
    Person,
    Role,
    Skill,
    SkillDecision,
    SkillSource,
    Tag,
)
from bot.runtime import jobs, outbox
from bot.services import Services, permissions, presence
from bot.services.accounts import CHAT_PLATFORMS
from bot.services.audit import record
from bot.types import Actions, Button, Element, Notice, Reply, Text

# What each piece of evidence is worth: helping resolve a huddle thread, writing an
# answer (one that is not a huddle thread's conclusion they are credited with), and a
# colleague's "helpful" on one of their answers.
POINTS = {"huddle": 1.0, "answer": 1.0, "helpful": 0.5}
FULL_WEIGHT_DAYS = 180
HALF_LIFE_DAYS = 180
SUGGEST_FROM = 3.0  # three resolved huddle threads on a topic, for example
# Points → the level suggested, highest first.
LEVELS = ((12.0, 5), (8.0, 4), (5.0, 3), (SUGGEST_FROM, 2))
DISMISS_DAYS = 90
SHOWN_PROOFS = 5  # pieces of evidence listed with a suggestion

REVERIFY_SWEEP = "expertise.reverify"
SWEEP_EVERY = timedelta(hours=1)
REMIND_EVERY = timedelta(days=7)

ACCEPT = "expertise.suggestion.accept"
SET_LEVEL = "expertise.suggestion.level"
DISMISS = "expertise.suggestion.dismiss"
CONFIRM = "expertise.reverify.confirm"
LOWER = "expertise.reverify.lower"

ACCEPTED, CHANGED, DISMISSED = "accepted", "changed", "dismissed"


# --- evidence -------------------------------------------------------------------------


@dataclass(frozen=True)
class Proof:
    """One piece of evidence: a resolved huddle thread, an answer, a helpful vote."""

    kind: str  # huddle, answer, helpful
    ref: int  # the huddle's id; the entry's for an answer or a vote
    title: str
    at: datetime


@dataclass
class Evidence:
    """What backs one person's expertise in one tag."""

    person_id: int
    tag_id: int
    proofs: list[Proof] = field(default_factory=list)
    points: float = 0.0

    def count(self, kind: str) -> int:
        return sum(1 for proof in self.proofs if proof.kind == kind)

    @property
    def last_at(self) -> datetime | None:
        return max((proof.at for proof in self.proofs), default=None)

    def summary(self) -> dict[str, int]:
        """For the audit log: how many of each."""
        return {
            "huddles": self.count("huddle"),
            "answers": self.count("answer"),
            "helpful": self.count("helpful"),
        }


def weight(at: datetime, now: datetime) -> float:
    """1 for evidence of the last FULL_WEIGHT_DAYS, then halved every HALF_LIFE_DAYS."""
    days = (now - at).total_seconds() / 86400
    if days <= FULL_WEIGHT_DAYS:
        return 1.0
    return 0.5 ** ((days - FULL_WEIGHT_DAYS) / HALF_LIFE_DAYS)


def level_for(points: float) -> int | None:
    return next((level for floor, level in LEVELS if points >= floor), None)


def _whom(actor: Person, person: Person | None, team_id: int | None) -> Select[tuple[int]]:
    """The ids of the people `actor` may decide for: `person` alone, or everyone in
    their scope (a lead's team, everyone for an admin; of `team_id` only, when given),
    never themself."""
    if person is not None:
        allowed = person.deleted_at is None and permissions.may_verify(actor, person)
        return select(Person.id).where(Person.id == (person.id if allowed else -1))
    who = select(Person.id).where(Person.deleted_at.is_(None), permissions.verifiable(actor))
    return who if team_id is None else who.where(Person.team_id == team_id)


def evidence(
    session: Session, who: Select[tuple[int]], now: datetime, *, tag_id: int | None = None
) -> dict[tuple[int, int], Evidence]:
    """(person id, tag id) → the evidence of each person `who` selects (by id)."""
    found: dict[tuple[int, int], Evidence] = {}

    def add(person_id: int, tag: int, proof: Proof) -> None:
        item = found.setdefault((person_id, tag), Evidence(person_id, tag))
        item.proofs.append(proof)
        item.points += POINTS[proof.kind] * weight(proof.at, now)

    def of_tag(query: Select) -> Select:  # type: ignore[type-arg]
        return query if tag_id is None else query.where(KnowledgeTag.tag_id == tag_id)

    helped: set[tuple[int, int]] = set()  # (person, entry): a huddle's conclusion they earned
    huddles = of_tag(
        select(
            HuddleParticipant.person_id,
            KnowledgeTag.tag_id,
            Huddle.id,
            Huddle.topic,
            Huddle.closed_at,
            KnowledgeEntry.id,
        )
        .join(Huddle, Huddle.id == HuddleParticipant.huddle_id)
        .join(KnowledgeEntry, KnowledgeEntry.huddle_id == Huddle.id)
        .join(KnowledgeTag, KnowledgeTag.entry_id == KnowledgeEntry.id)
        .where(
            HuddleParticipant.person_id.in_(who),
            HuddleParticipant.first_reply_at.is_not(None),
            Huddle.state == HuddleState.RESOLVED,
            or_(Huddle.requester_id.is_(None), Huddle.requester_id != HuddleParticipant.person_id),
        )
        .order_by(Huddle.id)
    )
    counted: set[tuple[int, int, int]] = set()  # (person, tag, huddle): each huddle once
    for person_id, tag, huddle_id, topic, closed_at, entry_id in session.execute(huddles):
        helped.add((person_id, entry_id))
        if (person_id, tag, huddle_id) not in counted:
            counted.add((person_id, tag, huddle_id))
            add(person_id, tag, Proof("huddle", huddle_id, topic, closed_at or now))
    answers = of_tag(
        select(
            KnowledgeAuthor.person_id,
            KnowledgeTag.tag_id,
            KnowledgeEntry.id,
            KnowledgeEntry.title,
            KnowledgeEntry.created_at,
        )
        .join(KnowledgeEntry, KnowledgeEntry.id == KnowledgeAuthor.entry_id)
        .join(KnowledgeTag, KnowledgeTag.entry_id == KnowledgeEntry.id)
        .where(KnowledgeAuthor.person_id.in_(who))
        .order_by(KnowledgeEntry.id)
    )
    for person_id, tag, entry_id, title, created_at in session.execute(answers):
        if (person_id, entry_id) not in helped:
            add(person_id, tag, Proof("answer", entry_id, title, created_at))
    votes = of_tag(
        select(
            KnowledgeAuthor.person_id,
            KnowledgeTag.tag_id,
            KnowledgeEntry.id,
            KnowledgeEntry.title,
            HelpfulVote.created_at,
        )
        .select_from(HelpfulVote)
        .join(KnowledgeAuthor, KnowledgeAuthor.entry_id == HelpfulVote.entry_id)
        .join(KnowledgeEntry, KnowledgeEntry.id == HelpfulVote.entry_id)
        .join(KnowledgeTag, KnowledgeTag.entry_id == HelpfulVote.entry_id)
        .where(
            KnowledgeAuthor.person_id.in_(who), HelpfulVote.person_id != KnowledgeAuthor.person_id
        )
        .order_by(HelpfulVote.created_at)
    )
    for person_id, tag, entry_id, title, voted_at in session.execute(votes):
        add(person_id, tag, Proof("helpful", entry_id, title, voted_at))
    for item in found.values():
        item.proofs.sort(key=lambda proof: (proof.at, proof.ref), reverse=True)
    return found


def counts_text(item: Evidence) -> str:
    """ "3 resolved huddle threads, 1 answer": only what there is."""
    parts = []
    for kind, (one, many) in messages.EVIDENCE_KINDS.items():
        n = item.count(kind)
        if n:
            parts.append(f"{n} {one if n == 1 else many}")
    return ", ".join(parts) or messages.EVIDENCE_NONE


def proof_text(proof: Proof) -> str:
    title = proof.title if len(proof.title) <= 60 else proof.title[:59].rstrip() + "…"
    day = f"{proof.at.day} {proof.at:%b %Y}"
    return messages.EVIDENCE_PROOF[proof.kind].format(id=proof.ref, title=title, day=day)


# --- suggestions ----------------------------------------------------------------------


@dataclass(frozen=True)
class Suggestion:
    person_id: int
    key: str
    name: str
    team: str | None
    tag_id: int
    tag: str
    level: int  # suggested
    held_level: int | None  # what they hold now, if anything
    held_verified: bool
    evidence: Evidence


def _latest_decisions(
    session: Session, person_ids: set[int], tag_id: int | None = None
) -> dict[tuple[int, int], SkillDecision]:
    query = (
        select(SkillDecision)
        .where(SkillDecision.person_id.in_(sorted(person_ids)))
        .order_by(SkillDecision.decided_at, SkillDecision.id)
    )
    if tag_id is not None:
        query = query.where(SkillDecision.tag_id == tag_id)
    return {(d.person_id, d.tag_id): d for d in session.scalars(query)}


def _decided(decision: SkillDecision | None, level: int, now: datetime) -> bool:
    """Whether a lead's last word on this suggestion still stands."""
    if decision is None:
        return False
    if decision.decision == DISMISSED:
        return decision.hidden_until is not None and decision.hidden_until > now
    return decision.suggested_level >= level  # accepted or changed: unless it grew since


def suggestions(
    session: Session,
    actor: Person,
    now: datetime,
    *,
    person: Person | None = None,
    team_id: int | None = None,
) -> list[Suggestion]:
    """The skills evidence suggests for the people `actor` may verify (`_whom`)."""
    who = _whom(actor, person, team_id)
    found = {
        pair: item
        for pair, item in evidence(session, who, now).items()
        if item.points >= SUGGEST_FROM
    }
    if not found:
        return []
    ids = {person_id for person_id, _ in found}
    people = {p.id: p for p in session.scalars(select(Person).where(Person.id.in_(sorted(ids))))}
    tags: dict[int, str] = {
        tag_id: name
        for tag_id, name in session.execute(
            select(Tag.id, Tag.name).where(Tag.id.in_(sorted({t for _, t in found})))
        )
    }
    held = {
        (s.person_id, s.tag_id): s
        for s in session.scalars(select(Skill).where(Skill.person_id.in_(sorted(ids))))
    }
    decisions = _latest_decisions(session, ids)
    result = []
    for (person_id, tag_id), item in found.items():
        level = level_for(item.points)
        someone = people.get(person_id)
        if level is None or someone is None or tag_id not in tags:
            continue
        skill = held.get((person_id, tag_id))
        if skill is not None and skill.level >= level:
            continue
        if _decided(decisions.get((person_id, tag_id)), level, now):
            continue
        result.append(
            Suggestion(
                person_id,
                someone.key,
                someone.display_name,
                someone.team.name if someone.team else None,
                tag_id,
                tags[tag_id],
                level,
                skill.level if skill is not None else None,
                skill is not None and skill.verified,
                item,
            )
        )
    result.sort(key=lambda s: (s.team or "", -s.evidence.points, s.name, s.tag))
    return result


# --- deciding -------------------------------------------------------------------------


@dataclass(frozen=True)
class Decided:
    decision: str
    person: Person
    tag: Tag
    level: int | None
    evidence: Evidence
    already: bool = False  # the same decision was made before: nothing changed


def _target(session: Session, person_id: int, tag_id: int) -> tuple[Person, Tag]:
    person, tag = session.get(Person, person_id), session.get(Tag, tag_id)
    if person is None or person.deleted_at is not None or tag is None:
        raise LookupError(messages.SUGGESTION_GONE)
    return person, tag


def decide(
    session: Session,
    actor: Person,
    person_id: int,
    tag_id: int,
    suggested: int,
    now: datetime,
    *,
    decision: str,
    level: int | None = None,
) -> Decided:
    """A lead's word on a suggestion: ACCEPTED (verified at the suggested level), CHANGED
    (verified at `level`) or DISMISSED (suggested again after DISMISS_DAYS)."""
    target, tag = _target(session, person_id, tag_id)
    if decision == DISMISSED:
        permissions.require_suggestion_dismisser(actor, target, tag=tag.name)
    else:
        act = (
            permissions.ACCEPT_SUGGESTION if decision == ACCEPTED else permissions.CHANGE_SUGGESTION
        )
        permissions.require_verifier(actor, target, act, tag=tag.name)
    if decision == ACCEPTED:
        level = suggested
    if decision != DISMISSED and (level is None or not 1 <= level <= 5):
        raise ValueError(messages.BAD_LEVEL.format(level=level))
    if not 1 <= suggested <= 5:
        raise ValueError(messages.SUGGESTION_GONE)
    proof = evidence(
        session, select(Person.id).where(Person.id == target.id), now, tag_id=tag.id
    ).get((target.id, tag.id)) or Evidence(target.id, tag.id)
    latest = _latest_decisions(session, {target.id}, tag.id).get((target.id, tag.id))
    skill = session.scalar(
        select(Skill).where(Skill.person_id == target.id, Skill.tag_id == tag.id)
    )
    if decision == DISMISSED:
        if latest is not None and _decided(latest, suggested, now) and latest.decision == DISMISSED:
            return Decided(decision, target, tag, None, proof, already=True)
        session.add(
            SkillDecision(
                person_id=target.id,
                tag_id=tag.id,
                decision=DISMISSED,
                suggested_level=suggested,
                decided_by_id=actor.id,
                decided_at=now,
                hidden_until=now + timedelta(days=DISMISS_DAYS),
            )
        )
        permissions.allowed(
            session,
            actor,
            permissions.DISMISS_SUGGESTION,
            f"person:{target.key}",
            tag=tag.name,
            suggested=suggested,
            days=DISMISS_DAYS,
            **proof.summary(),
        )
        return Decided(decision, target, tag, None, proof)
    if (
        skill is not None
        and skill.verified
        and skill.level == level
        and latest is not None
        and latest.decision in {ACCEPTED, CHANGED}
        and latest.level == level
    ):
        return Decided(decision, target, tag, level, proof, already=True)
    before = f"{skill.level}{' verified' if skill.verified else ''}" if skill else "none"
    if skill is None:
        skill = Skill(person=target, tag=tag, source=SkillSource.EVIDENCE)
        session.add(skill)
    skill.level = level  # type: ignore[assignment]
    skill.verified_at, skill.verified_by = now, actor
    session.add(
        SkillDecision(
            person_id=target.id,
            tag_id=tag.id,
            decision=decision,
            suggested_level=suggested,
            level=level,
            decided_by_id=actor.id,
            decided_at=now,
        )
    )
    session.flush()
    permissions.allowed(
        session,
        actor,
        permissions.ACCEPT_SUGGESTION if decision == ACCEPTED else permissions.CHANGE_SUGGESTION,
        f"person:{target.key}",
        tag=tag.name,
        level=level,
        suggested=suggested,
        before=before,
        **proof.summary(),
    )
    return Decided(decision, target, tag, level, proof)


# --- freshness: verified skills gone quiet ----------------------------------------------


@dataclass(frozen=True)
class StaleSkill:
    person_id: int
    key: str
    name: str
    tag_id: int
    tag: str
    level: int
    verified_at: datetime
    verified_by: str | None
    last_evidence: datetime | None


def stale_verified(
    session: Session,
    actor: Person,
    now: datetime,
    after: timedelta,
    *,
    person: Person | None = None,
    team_id: int | None = None,
) -> list[StaleSkill]:
    """Verified skills of the people `actor` may verify (`_whom`) with no evidence for
    `after`: not verified again, no huddle thread, answer or helpful vote since."""
    cutoff = now - after
    who = _whom(actor, person, team_id)
    rows = session.execute(
        select(Skill, Person, Tag)
        .join(Person, Person.id == Skill.person_id)
        .join(Tag, Tag.id == Skill.tag_id)
        .where(Skill.person_id.in_(who), Skill.verified_at.is_not(None), Skill.verified_at < cutoff)
        .order_by(Person.display_name, Tag.name)
    ).all()
    if not rows:
        return []
    ids = select(Person.id).where(Person.id.in_(sorted({p.id for _, p, _ in rows})))
    found = evidence(session, ids, now)
    stale = []
    for skill, someone, tag in rows:
        item = found.get((someone.id, tag.id))
        last = item.last_at if item is not None else None
        if last is not None and last >= cutoff:
            continue
        verifier = skill.verified_by.display_name if skill.verified_by else None
        assert skill.verified_at is not None
        stale.append(
            StaleSkill(
                someone.id,
                someone.key,
                someone.display_name,
                tag.id,
                tag.name,
                skill.level,
                skill.verified_at,
                verifier,
                last,
            )
        )
    return stale


@dataclass(frozen=True)
class Reverified:
    person: Person
    tag: Tag
    level: int
    before: int
    already: bool = False


def reverify(
    session: Session,
    actor: Person,
    person_id: int,
    tag_id: int,
    level: int,
    now: datetime,
    after: timedelta,
) -> Reverified:
    """A lead confirms a verified skill at its level, or lowers it: verified again now."""
    target, tag = _target(session, person_id, tag_id)
    skill = session.scalar(
        select(Skill).where(Skill.person_id == target.id, Skill.tag_id == tag.id)
    )
    lowered = skill is not None and level != skill.level
    act = permissions.LOWER_SKILL if lowered else permissions.CONFIRM_SKILL
    permissions.require_verifier(actor, target, act, tag=tag.name)
    if skill is None:
        raise LookupError(messages.NO_SUCH_SKILL.format(name=target.display_name, tag=tag.name))
    if not 1 <= level <= 5:
        raise ValueError(messages.BAD_LEVEL.format(level=level))
    if level > skill.level:
        raise ValueError(
            messages.REVERIFY_NOT_HIGHER.format(
                name=target.display_name, key=target.key, tag=tag.name, level=level
            )
        )
    before = skill.level
    fresh = skill.verified_at is not None and skill.verified_at >= now - after
    if fresh and level == skill.level:
        return Reverified(target, tag, level, before, already=True)
    skill.level = level
    skill.verified_at, skill.verified_by = now, actor
    permissions.allowed(
        session,
        actor,
        permissions.CONFIRM_SKILL if level == before else permissions.LOWER_SKILL,
        f"person:{target.key}",
        tag=tag.name,
        level=level,
        before=before,
    )
    return Reverified(target, tag, level, before)


def _leads_to_ask(session: Session, now: datetime) -> list[Person]:
    return list(
        session.scalars(
            select(Person)
            .where(
                Person.role == Role.LEAD,
                Person.team_id.is_not(None),
                Person.deleted_at.is_(None),
                or_(
                    Person.reverify_asked_at.is_(None),
                    Person.reverify_asked_at <= now - REMIND_EVERY,
                ),
            )
            .order_by(Person.id)
        )
    )


def ask_leads(services: Services, session: Session, now: datetime) -> list[Person]:
    """A direct message to each lead, at work now and not asked in the last week, listing
    their team's verified skills gone quiet; the leads asked."""
    after = timedelta(days=services.settings.reverify_after_days)
    asked = []
    for lead in _leads_to_ask(session, now):
        if not presence.on_shift(lead, now):
            continue  # asked in a later sweep, during their hours
        stale = stale_verified(session, lead, now, after)
        if not stale:
            continue
        # Read again under a lock: two sweeps at once ask a lead once.
        last = session.scalar(
            select(Person.reverify_asked_at).where(Person.id == lead.id).with_for_update()
        )
        if last is not None and last > now - REMIND_EVERY:
            continue
        lead.reverify_asked_at = now
        platform = outbox.reach(session, lead.id, CHAT_PLATFORMS[0]) or "console"
        outbox.enqueue(
            session,
            platform=platform,
            kind="dm",
            person_id=lead.id,
            reply=reverify_reply(stale, after),
            now=now,
        )
        record(
            session,
            None,
            "skill.reverify.ask",
            f"person:{lead.key}",
            actor_label="whoknows",
            skills=[f"{s.key}:{s.tag}" for s in stale[:REVERIFY_SHOWN]],
        )
        asked.append(lead)
    return asked


@jobs.recurring(REVERIFY_SWEEP, SWEEP_EVERY)
def _sweep(services: Services, session: Session, job: Job, now: datetime) -> None:
    ask_leads(services, session, now)


# --- what people see ------------------------------------------------------------------

SHOWN = 10
REVERIFY_SHOWN = 10


def suggestion_buttons(item: Suggestion) -> tuple[Button, ...]:
    value = f"{item.person_id}:{item.tag_id}:{item.level}"
    buttons = [
        Button(messages.SUGGESTION_ACCEPT.format(level=item.level), ACCEPT, value, "primary")
    ]
    for other in (item.level - 1, item.level + 1):
        if 1 <= other <= 5:
            buttons.append(
                Button(messages.SUGGESTION_LEVEL.format(level=other), SET_LEVEL, f"{value}:{other}")
            )
    buttons.append(Button(messages.SUGGESTION_DISMISS, DISMISS, value, "danger"))
    return tuple(buttons)


def held_text(item: Suggestion) -> str:
    if item.held_level is None:
        return messages.SUGGESTION_NEW
    vouched = messages.REASON_VERIFIED if item.held_verified else messages.REASON_SELF_DECLARED
    return messages.SUGGESTION_HELD.format(level=item.held_level, vouched=vouched)


def suggestion_elements(items: list[Suggestion], limit: int = SHOWN) -> list[Element]:
    """Each suggestion: who and what, the evidence, and the buttons that decide it."""
    elements: list[Element] = []
    for item in items[:limit]:
        proofs = "; ".join(proof_text(p) for p in item.evidence.proofs[:SHOWN_PROOFS])
        elements.extend(
            (
                Text(
                    messages.SUGGESTION_LINE.format(
                        name=item.name,
                        key=item.key,
                        tag=item.tag,
                        level=item.level,
                        held=held_text(item),
                    )
                ),
                Text(
                    messages.SUGGESTION_EVIDENCE.format(
                        counts=counts_text(item.evidence), proofs=proofs
                    )
                ),
                Actions(suggestion_buttons(item)),
            )
        )
    if len(items) > limit:
        elements.append(Text(messages.SUGGESTIONS_MORE.format(count=len(items) - limit)))
    return elements


def reverify_buttons(item: StaleSkill) -> tuple[Button, ...]:
    value = f"{item.person_id}:{item.tag_id}"
    buttons = [
        Button(
            messages.REVERIFY_CONFIRM.format(level=item.level),
            CONFIRM,
            f"{value}:{item.level}",
            "primary",
        )
    ]
    if item.level > 1:
        buttons.append(
            Button(
                messages.REVERIFY_LOWER.format(level=item.level - 1),
                LOWER,
                f"{value}:{item.level - 1}",
            )
        )
    return tuple(buttons)


def reverify_line(item: StaleSkill) -> str:
    by = messages.REVERIFY_BY.format(name=item.verified_by) if item.verified_by else ""
    last = (
        f"{item.last_evidence.day} {item.last_evidence:%b %Y}"
        if item.last_evidence is not None
        else messages.REVERIFY_NEVER
    )
    return messages.REVERIFY_LINE.format(
        name=item.name,
        key=item.key,
        tag=item.tag,
        level=item.level,
        when=f"{item.verified_at.day} {item.verified_at:%b %Y}",
        by=by,
        last=last,
    )


def reverify_elements(items: list[StaleSkill], limit: int = REVERIFY_SHOWN) -> list[Element]:
    elements: list[Element] = []
    for item in items[:limit]:
        elements.extend((Text(reverify_line(item)), Actions(reverify_buttons(item))))
    if len(items) > limit:
        elements.append(Text(messages.SUGGESTIONS_MORE.format(count=len(items) - limit)))
    return elements


def reverify_reply(items: list[StaleSkill], after: timedelta) -> Reply:
    return Reply.of(Notice(messages.REVERIFY_DM.format(days=after.days)), *reverify_elements(items))
