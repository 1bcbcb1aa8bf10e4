"""Huddles: a thread where invited experts help with one question, until it is resolved.

Lifecycle: open → (first expert reply) → resolved, or cancelled / expired, and
reopen. While no invited expert has replied, an escalation ladder climbs one
step per timeout (the next experts, the team's channel, the team lead), each
step said in the thread; a decline by every invited expert climbs at once.
Timers are due jobs (`bot.runtime.jobs`); messages go through the outbox (`bot.runtime.outbox`),
so everything a step does commits, or not, together.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, selectinload

from bot import messages
from bot.db.models import (
    Huddle,
    HuddleParticipant,
    HuddleState,
    Job,
    KnowledgeEntry,
    Person,
    Role,
    Tag,
)
from bot.matching import Ranking
from bot.ops import metrics
from bot.runtime import jobs, outbox
from bot.services import (
    Services,
    accounts,
    knowledge,
    learning,
    learning_goals,
    limits,
    permissions,
)
from bot.text import clean_text
from bot.types import Actions, Button, Line, Mention, Notice, Reply, Text, Where

MAX_TOPIC_CHARS = 300
MAX_POST_CHARS = 4000
# Topics a question spans: named or close in meaning, within this share of the best.
COVER_SHARE = 0.5
MAX_TOPICS = 3
CANDIDATES = 12  # ranked experts looked at when choosing whom to invite
ESCALATE = "escalate"
EXPIRE = "expire"
# The button on an invitation sent to another platform: a form whose answer is posted.
ANSWER_ACTION = "huddle.answer"


class HuddleError(ValueError):
    """Input a huddle cannot act on; the message says how to fix it."""


def mention(person: Person) -> Mention:
    return Mention(person.id, person.display_name)


# --- choosing experts ------------------------------------------------------------------


def question_topics(ranking: Ranking) -> list[str]:
    """The topics a question spans: tags it names or resembles, close to the best one."""
    direct = [s for s in ranking.tags if s.how not in {"evidence", "parent", "child"}]
    if not direct:
        return [s.name for s in ranking.tags[:1]]
    best = direct[0].relevance
    return [s.name for s in direct if s.relevance >= COVER_SHARE * best][:MAX_TOPICS]


def choose_experts(ranking: Ranking, count: int, exclude: set[int]) -> list[int]:
    """The best available expert the asker is shown, then the fewest more who cover the
    question's other topics, then the next best.

    The first pick is the top of the ranking (available before busy), whatever it
    covers: set cover (each further pick covering the most topics not yet covered)
    may add people for another topic, never replace the best for the first. Then
    topped up to `count` in rank order.
    """
    cards = [c for c in ranking.experts if c.person_id not in exclude]
    # Available first, the matcher's order within each.
    cards.sort(key=lambda c: not c.presence.reachable)
    if not cards:
        return []
    holds = {c.person_id: {t.name for t in c.tags} for c in cards}
    picks = [cards[0].person_id]
    uncovered = set(question_topics(ranking)) - holds[picks[0]]
    while uncovered and len(picks) < max(count, 1):
        # Someone available who covers anything beats someone away who covers more.
        best = max(
            (c for c in cards if c.person_id not in picks),
            key=lambda c: (
                bool(holds[c.person_id] & uncovered) and c.presence.reachable,
                len(holds[c.person_id] & uncovered),
            ),
            default=None,
        )
        if best is None or not holds[best.person_id] & uncovered:
            break
        picks.append(best.person_id)
        uncovered -= holds[best.person_id]
    for card in cards:
        if len(picks) >= count:
            break
        if card.person_id not in picks:
            picks.append(card.person_id)
    return picks


def _rank(services: Services, session: Session, topic: str, requester: Person) -> Ranking:
    return services.matcher.rank(
        session, topic, services.clock(), requester_id=requester.id, limit=CANDIDATES
    )


def require_suggested(
    services: Services, session: Session, requester: Person, topic: str, people: list[Person]
) -> None:
    """People picked on a *Start huddle thread* button must be experts the ranking
    suggests to this asker for this question: the button's value and its picker come
    back from the client, and a forged one is refused (audited by the catcher).

    Ranked again now, with room for the order to move with presence and load since the
    answer was shown (CANDIDATES, not the five an answer shows)."""
    wanted = [p for p in people if p.id != requester.id]
    if not wanted:
        return
    ranking = _rank(services, session, " ".join(clean_text(topic).split()), requester)
    suggested = {c.person_id for c in ranking.experts} if ranking.confident else set()
    permissions.require_suggested(requester, topic, wanted, suggested)


# --- messages --------------------------------------------------------------------------


def channel_label(channel: str | None) -> str:
    return f"#{channel}" if channel and not channel.startswith(("#", "<")) else channel or "?"


def root_reply(session: Session, huddle: Huddle) -> Reply:
    """The thread root as it should read now: topic, people, state, buttons while open."""
    parts: list[str | Mention] = [
        messages.HUDDLE_ROOT.format(id=huddle.id, topic=huddle.topic),
        mention(huddle.requester) if huddle.requester else "?",
    ]
    invited = [p.person for p in huddle.participants if p.invited]
    if invited:
        parts.append(messages.HUDDLE_ROOT_INVITED)
        for i, person in enumerate(invited):
            parts.extend([", "] if i else [])
            parts.append(mention(person))
    elements: list = [Line(tuple(parts))]
    if huddle.state == HuddleState.OPEN:
        elements.append(Text(messages.HUDDLE_ROOT_OPEN))
        elements.append(
            Actions(
                (
                    Button(messages.HUDDLE_RESOLVE, "huddle.resolve", str(huddle.id), "primary"),
                    Button(messages.HUDDLE_DECLINE, "huddle.decline", str(huddle.id)),
                )
            )
        )
    elif huddle.state == HuddleState.RESOLVED:
        entry = session.scalar(
            select(KnowledgeEntry)
            .where(KnowledgeEntry.huddle_id == huddle.id)
            .order_by(KnowledgeEntry.id.desc())
        )
        closer = huddle_closer(session, huddle)
        if entry is not None:
            elements.append(
                Notice(
                    messages.HUDDLE_ROOT_RESOLVED.format(
                        name=closer, entry=entry.id, title=entry.title
                    ),
                    "success",
                )
            )
    elif huddle.state == HuddleState.CANCELLED:
        elements.append(
            Notice(messages.HUDDLE_ROOT_CANCELLED.format(name=huddle_closer(session, huddle)))
        )
    else:
        elements.append(Notice(messages.HUDDLE_ROOT_EXPIRED.format(hours=_expiry_hours(huddle))))
    return Reply(tuple(elements), private=False)


def huddle_closer(session: Session, huddle: Huddle) -> str:
    person = session.get(Person, huddle.closed_by_id) if huddle.closed_by_id else None
    return person.display_name if person else "someone"


def _expiry_hours(huddle: Huddle) -> int:
    if huddle.closed_at is None:
        return 0
    return max(1, round((huddle.closed_at - huddle.created_at).total_seconds() / 3600))


def _send(
    session: Session,
    huddle: Huddle,
    kind: str,
    reply: Reply,
    now: datetime,
    *,
    platform: str | None = None,
    **to: object,
) -> None:
    """A message about this huddle, on the platform it was opened on unless told another."""
    outbox.enqueue(
        session,
        platform=platform or huddle.platform or "console",
        kind=kind,
        huddle=huddle,
        reply=reply,
        now=now,
        **to,  # type: ignore[arg-type]
    )


def _note(session: Session, huddle: Huddle, now: datetime, *parts: str | Mention) -> None:
    """A line in the huddle's thread."""
    _send(session, huddle, "thread", Reply((Line(tuple(parts)),), private=False), now)


def _refresh_root(session: Session, huddle: Huddle, now: datetime) -> None:
    _send(session, huddle, "update", root_reply(session, huddle), now)


def _platform(huddle: Huddle) -> str:
    return huddle.platform or "console"


def _dm(
    session: Session,
    huddle: Huddle,
    person: Person,
    reply: Reply,
    now: datetime,
    platform: str | None = None,
) -> None:
    """A direct message where they can be reached: the huddle's platform when they have an
    account there, else another chat platform where they do (`outbox.reach`)."""
    there = platform or outbox.reach(session, person.id, _platform(huddle)) or _platform(huddle)
    _send(session, huddle, "dm", reply, now, platform=there, person_id=person.id)


def _invite(
    session: Session, huddle: Huddle, people: list[Person], round_: int, now: datetime
) -> None:
    for person in people:
        huddle.participants.append(
            HuddleParticipant(person=person, invited_at=now, invited=True, round=round_)
        )


def _message_invited(session: Session, huddle: Huddle, people: list[Person], now: datetime) -> None:
    """A direct message to each invited expert, pointing at the thread; to one with no
    account on the thread's platform, where they have one, with a way to answer from there
    (and a line in the thread saying so)."""
    requester = huddle.requester.display_name if huddle.requester else "A colleague"
    home = _platform(huddle)
    for person in people:
        there = outbox.reach(session, person.id, home)
        if there is not None and there != home:
            _invite_elsewhere(session, huddle, person, requester, there, now)
            continue
        # With no chat account at all, the message fails and the asker hears how to fix it.
        dm = Reply.of(
            Text(
                messages.HUDDLE_DM.format(
                    name=requester,
                    topic=huddle.topic,
                    id=huddle.id,
                    channel=channel_label(huddle.channel_ref),
                )
            ),
            Text(messages.HUDDLE_DM_HINT),
            Actions((Button(messages.HUDDLE_DECLINE, "huddle.decline", str(huddle.id)),)),
        )
        _dm(session, huddle, person, dm, now, platform=home)


def _invite_elsewhere(
    session: Session, huddle: Huddle, person: Person, requester: str, there: str, now: datetime
) -> None:
    """The invitation on the platform they are on: they cannot see the thread, so they
    answer with a form and their answer is posted in it as theirs (`answer`)."""
    home = accounts.platform_name(_platform(huddle))
    dm = Reply.of(
        Text(
            messages.HUDDLE_DM_ELSEWHERE.format(
                name=requester, topic=huddle.topic, id=huddle.id, platform=home
            )
        ),
        Text(messages.HUDDLE_DM_ELSEWHERE_HINT),
        Actions(
            (
                Button(messages.HUDDLE_ANSWER, ANSWER_ACTION, str(huddle.id), "primary"),
                Button(messages.HUDDLE_DECLINE, "huddle.decline", str(huddle.id)),
            )
        ),
    )
    _dm(session, huddle, person, dm, now, platform=there)
    other = accounts.platform_name(there)
    said = messages.HUDDLE_ASKED_ELSEWHERE.format(
        name=person.display_name, platform=home, other=other
    )
    _note(session, huddle, now, said)


# --- lifecycle -------------------------------------------------------------------------


# The same person opening a huddle on the same topic within this window gets that huddle.
TWIN_WINDOW = timedelta(seconds=30)


@dataclass(frozen=True)
class Opened:
    huddle: Huddle
    invited: list[Person]


def open_huddle(
    services: Services,
    session: Session,
    requester: Person,
    topic: str,
    experts: list[Person] | None,
    *,
    platform: str,
    where: Where,
) -> Opened:
    now = services.clock()
    topic = " ".join(clean_text(topic).split())[:MAX_TOPIC_CHARS]
    if not topic:
        raise HuddleError(messages.HUDDLE_EMPTY_TOPIC)
    ranking: Ranking | None = None
    if experts is not None:
        chosen = [p for p in dict.fromkeys(experts) if p.id != requester.id]
        if not chosen:
            raise HuddleError(messages.HUDDLE_ONLY_YOU)
    else:
        ranking = _rank(services, session, topic, requester)
        ids = (
            choose_experts(ranking, services.settings.huddle_experts, {requester.id})
            if ranking.confident
            else []
        )
        if not ids:
            raise HuddleError(messages.HUDDLE_NO_EXPERTS.format(topic=topic[:80]))
        found = {p.id: p for p in session.scalars(select(Person).where(Person.id.in_(ids)))}
        chosen = [found[i] for i in ids if i in found]
    # A double click (or the same command twice) opens one huddle: opens by one
    # person are serialised on their row, and a twin opened moments ago is returned.
    session.execute(select(Person.id).where(Person.id == requester.id).with_for_update())
    twin = session.scalar(
        select(Huddle)
        .where(
            Huddle.requester_id == requester.id,
            Huddle.topic == topic,
            Huddle.state == HuddleState.OPEN,
            Huddle.created_at >= now - TWIN_WINDOW,
        )
        .order_by(Huddle.id.desc())
        .limit(1)
    )
    invited = [p.person for p in twin.participants] if twin is not None else []
    if twin is not None and (
        # Named experts: the same people; chosen for them: whoever was chosen then.
        experts is None or {p.id for p in invited} == {p.id for p in chosen}
    ):
        return Opened(twin, invited)
    limits.require_room_for_huddle(session, services.settings, requester, now, len(chosen))
    team = requester.team
    channel = (
        (team.huddle_channel if team else None) or services.settings.huddle_channel or where.channel
    )
    if not channel:
        raise HuddleError(messages.HUDDLE_NO_CHANNEL)
    huddle = Huddle(
        topic=topic,
        requester=requester,
        team=team,
        platform=platform,
        channel_ref=channel,
        created_at=now,
    )
    session.add(huddle)
    session.flush()
    _invite(session, huddle, chosen, 0, now)
    session.flush()
    outbox.enqueue(
        session,
        platform=platform,
        kind="post",
        channel=channel,
        huddle=huddle,
        is_root=True,
        reply=root_reply(session, huddle),
        now=now,
    )
    _message_invited(session, huddle, chosen, now)
    _invite_learners(services, session, huddle, ranking, {p.id for p in chosen}, now)
    _schedule_ladder(services, session, huddle, now)
    _schedule_expiry(services, session, huddle, now)
    metrics.huddle(session, "opened")
    return Opened(huddle, chosen)


def _invite_learners(
    services: Services,
    session: Session,
    huddle: Huddle,
    ranking: Ranking | None,
    experts: set[int],
    now: datetime,
) -> None:
    """Learners of the topic in the team, as observers (bot.services.learning_goals). The
    question is ranked for its topics only when experts were named and someone there
    has a goal."""

    def topics() -> list[str]:
        found = ranking
        if found is None and huddle.requester is not None:
            found = _rank(services, session, huddle.topic, huddle.requester)
        return question_topics(found) if found is not None and found.confident else []

    learning_goals.invite_observers(
        services.settings.huddle_observers, session, huddle, topics, experts, now
    )


def _schedule_ladder(services: Services, session: Session, huddle: Huddle, now: datetime) -> None:
    step = huddle.ladder_step + 1
    if step <= len(services.settings.escalation_ladder):
        due = now + timedelta(seconds=services.settings.escalation_timeout_s)
        jobs.schedule(session, ESCALATE, due, huddle_id=huddle.id, step=step)


def _schedule_expiry(services: Services, session: Session, huddle: Huddle, now: datetime) -> None:
    due = now + timedelta(seconds=services.settings.huddle_expiry_s)
    jobs.schedule(session, EXPIRE, due, huddle_id=huddle.id)


def get(session: Session, huddle_id: int) -> Huddle:
    huddle = session.get(
        Huddle,
        huddle_id,
        options=[selectinload(Huddle.participants).selectinload(HuddleParticipant.person)],
    )
    if huddle is None:
        raise HuddleError(messages.HUDDLE_NOT_FOUND.format(id=huddle_id))
    return huddle


def by_thread(session: Session, platform: str, channel: str, thread: str) -> Huddle | None:
    return session.scalar(
        select(Huddle).where(
            Huddle.platform == platform, Huddle.channel_ref == channel, Huddle.thread_ref == thread
        )
    )


def climb(services: Services, session: Session, huddle: Huddle, now: datetime) -> None:
    """The next step of the ladder, said in the thread; then the timer for the one after."""
    ladder = services.settings.escalation_ladder
    while huddle.ladder_step < len(ladder):
        huddle.ladder_step += 1
        step = ladder[huddle.ladder_step - 1]
        if _escalate(services, session, huddle, step, now):
            metrics.escalation(session, step)
            break
    if huddle.ladder_step < len(ladder):
        _schedule_ladder(services, session, huddle, now)
        return
    jobs.cancel(session, huddle.id, ESCALATE)
    if huddle.requester is not None:
        _note(
            session,
            huddle,
            now,
            messages.HUDDLE_LADDER_DONE,
            mention(huddle.requester),
            " ",
            messages.HUDDLE_LADDER_DONE_HINT.format(id=huddle.id),
        )


def _escalate(
    services: Services, session: Session, huddle: Huddle, step: str, now: datetime
) -> bool:
    """Take one ladder step; False when it found nobody to ask (go on to the next)."""
    if step == "experts":
        requester = huddle.requester
        exclude = {p.person_id for p in huddle.participants}
        # Learners observing it are not among its experts (not asked, not counted).
        exclude |= learning_goals.observer_ids(session, huddle.id)
        ids: list[int] = []
        if requester is not None:
            ranking = _rank(services, session, huddle.topic, requester)
            exclude.add(requester.id)
            reachable = [
                c.person_id
                for c in ranking.experts
                if c.presence.reachable and c.person_id not in exclude
            ]
            ids = reachable[: services.settings.huddle_experts]
        if not ids:
            _note(session, huddle, now, messages.HUDDLE_ESCALATED_NOBODY)
            return False
        people = list(session.scalars(select(Person).where(Person.id.in_(ids))))
        people.sort(key=lambda p: ids.index(p.id))
        _invite(session, huddle, people, huddle.ladder_step, now)
        _message_invited(session, huddle, people, now)
        parts: list[str | Mention] = [messages.HUDDLE_ESCALATED_EXPERTS]
        for i, person in enumerate(people):
            parts.extend([", "] if i else [])
            parts.append(mention(person))
        parts.append(".")
        _note(session, huddle, now, *parts)
        _refresh_root(session, huddle, now)
        return True
    if step == "channel":
        channel = huddle.team.channel if huddle.team else None
        if not channel or channel == huddle.channel_ref:
            return False
        call = messages.HUDDLE_CHANNEL_CALL.format(
            topic=huddle.topic, id=huddle.id, where=channel_label(huddle.channel_ref)
        )
        _send(session, huddle, "post", Reply.of(Text(call), private=False), now, channel=channel)
        _note(
            session,
            huddle,
            now,
            messages.HUDDLE_ESCALATED_CHANNEL.format(channel=channel_label(channel)),
        )
        return True
    # "lead": the leads of the asker's team.
    leads = (
        list(
            session.scalars(
                select(Person).where(
                    Person.team_id == huddle.team_id,
                    Person.role == Role.LEAD,
                    Person.deleted_at.is_(None),
                )
            )
        )
        if huddle.team_id is not None
        else []
    )
    leads = [p for p in leads if p.id != huddle.requester_id]
    if not leads:
        _note(session, huddle, now, messages.HUDDLE_ESCALATED_NO_LEAD)
        return False
    parts = [messages.HUDDLE_ESCALATED_LEAD]
    for i, lead in enumerate(leads):
        parts.extend([", "] if i else [])
        parts.append(mention(lead))
        _dm(
            session,
            huddle,
            lead,
            Reply.of(
                Text(
                    messages.HUDDLE_LEAD_DM.format(
                        id=huddle.id,
                        topic=huddle.topic,
                        name=huddle.requester.display_name if huddle.requester else "someone",
                        channel=channel_label(huddle.channel_ref),
                    )
                )
            ),
            now,
        )
    parts.append(".")
    _note(session, huddle, now, *parts)
    return True


@jobs.handler(ESCALATE)
def _on_escalate(services: Services, session: Session, job: Job, now: datetime) -> None:
    huddle = session.get(Huddle, job.huddle_id)
    if (
        huddle is None
        or huddle.state != HuddleState.OPEN
        or huddle.first_reply_at is not None
        # A decline already climbed past this step.
        or job.step != huddle.ladder_step + 1
    ):
        return
    climb(services, session, huddle, now)


@jobs.handler(EXPIRE)
def _on_expire(services: Services, session: Session, job: Job, now: datetime) -> None:
    huddle = session.get(Huddle, job.huddle_id)
    if huddle is None or huddle.state != HuddleState.OPEN:
        return
    huddle.state, huddle.closed_at = HuddleState.EXPIRED, now
    metrics.huddle(session, "expired")
    jobs.cancel(session, huddle.id)
    _refresh_root(session, huddle, now)


def record_reply(
    services: Services, session: Session, huddle: Huddle, person: Person, now: datetime
) -> bool:
    """Someone wrote in the thread; True when it was the huddle's first expert reply."""
    if person.id == huddle.requester_id or huddle.state != HuddleState.OPEN:
        return False
    # Two replies of one person at once (a thread reply and `huddle reply`) must not both
    # add them: the huddle's row is locked (PostgreSQL) and its participants read again.
    session.execute(select(Huddle.id).where(Huddle.id == huddle.id).with_for_update())
    session.refresh(huddle, attribute_names=["participants"])
    if learning_goals.note_reply(session, huddle, person, now):
        return False  # an observer's words: not an expert reply, the ladder goes on
    participant = next((p for p in huddle.participants if p.person_id == person.id), None)
    if participant is None:
        participant = HuddleParticipant(
            person=person, invited_at=now, invited=False, round=huddle.ladder_step
        )
        huddle.participants.append(participant)
    if participant.first_reply_at is None:
        participant.first_reply_at = now
    first = huddle.first_reply_at is None
    if first:
        huddle.first_reply_at = now
        jobs.cancel(session, huddle.id, ESCALATE)
    # Activity keeps an open huddle from expiring.
    _schedule_expiry(services, session, huddle, now)
    return first


def post_as(
    services: Services, session: Session, huddle: Huddle, person: Person, text: str
) -> None:
    """Write in the thread on someone's behalf (chats without threads), counting as a reply."""
    now = services.clock()
    if huddle.state != HuddleState.OPEN:
        raise HuddleError(messages.HUDDLE_NOT_OPEN.format(id=huddle.id, state=huddle.state.value))
    said = clean_text(text).strip()[:MAX_POST_CHARS]
    _note(session, huddle, now, f"{person.display_name}: {said}")
    record_reply(services, session, huddle, person, now)


def check_answer(session: Session, huddle: Huddle, person: Person) -> None:
    """Whether `person` may answer in this huddle from elsewhere (the *Answer* form): one
    who has a part in it (`permissions.require_huddle_party`), and it is open."""
    permissions.require_huddle_party(person, huddle, permissions.ANSWER_HUDDLE)
    if huddle.state != HuddleState.OPEN:
        raise HuddleError(messages.HUDDLE_NOT_OPEN.format(id=huddle.id, state=huddle.state.value))


def answer(services: Services, session: Session, huddle: Huddle, person: Person, text: str) -> None:
    """An answer from the *Answer* form, posted in the thread as theirs: it counts as their
    reply (the ladder stops, and resolving credits them)."""
    check_answer(session, huddle, person)
    if not clean_text(text).strip():
        raise HuddleError(messages.HUDDLE_ANSWER_EMPTY.format(id=huddle.id))
    post_as(services, session, huddle, person, text)


def decline(services: Services, session: Session, huddle: Huddle, person: Person) -> None:
    now = services.clock()
    if huddle.state != HuddleState.OPEN:
        raise HuddleError(messages.HUDDLE_NOT_OPEN.format(id=huddle.id, state=huddle.state.value))
    participant = next(
        (p for p in huddle.participants if p.person_id == person.id and p.invited), None
    )
    if participant is None:
        raise HuddleError(messages.HUDDLE_NOT_INVITED.format(id=huddle.id))
    if participant.first_reply_at is not None:
        raise HuddleError(messages.HUDDLE_ALREADY_REPLIED.format(id=huddle.id))
    if participant.declined_at is not None:
        return
    participant.declined_at = now
    _note(session, huddle, now, messages.HUDDLE_DECLINED.format(name=person.display_name))
    waiting = [p for p in huddle.participants if p.invited and p.declined_at is None]
    if not waiting and huddle.first_reply_at is None:
        jobs.cancel(session, huddle.id, ESCALATE)
        climb(services, session, huddle, now)


def resolve(
    services: Services,
    session: Session,
    huddle: Huddle,
    actor: Person,
    title: str,
    answer: str,
    tags: list[Tag],
) -> tuple[KnowledgeEntry, list[Person]]:
    """Save the conclusion as a knowledge entry credited to the experts who replied."""
    now = services.clock()
    standing = permissions.require_huddle_closer(actor, huddle, permissions.RESOLVE_HUDDLE)
    if huddle.state == HuddleState.RESOLVED:
        entry_id = session.scalar(
            select(KnowledgeEntry.id).where(KnowledgeEntry.huddle_id == huddle.id)
        )
        raise HuddleError(messages.HUDDLE_ALREADY_RESOLVED.format(id=huddle.id, entry=entry_id))
    if huddle.state != HuddleState.OPEN:
        raise HuddleError(messages.HUDDLE_NOT_OPEN.format(id=huddle.id, state=huddle.state.value))
    title, answer = " ".join(clean_text(title).split()), clean_text(answer).strip()
    if not title or not answer:
        raise HuddleError(messages.HUDDLE_RESOLVE_EMPTY.format(id=huddle.id))
    helpers = [p.person for p in huddle.participants if p.first_reply_at is not None]
    credited = helpers or [actor]
    entry, created = knowledge.add_entry(
        session, title[: knowledge.MAX_TITLE_CHARS], answer, tags, []
    )
    # An identical answer already saved keeps its authors and gains these.
    authors = list(dict.fromkeys([*(entry.authors if not created else []), *credited]))
    entry.authors = authors
    entry.huddle_id = huddle.id
    entry.updated_at = now
    if created:
        entry.created_at = now
    huddle.state, huddle.closed_at, huddle.closed_by_id = HuddleState.RESOLVED, now, actor.id
    learning.record_huddle(session, huddle, tags, helpers, now)  # the question, for tag models
    metrics.huddle(session, "resolved")
    jobs.cancel(session, huddle.id)
    session.flush()
    permissions.allowed(
        session,
        actor,
        permissions.RESOLVE_HUDDLE,
        f"huddle:{huddle.id}",
        standing=standing,
        entry=entry.id,
        credited=[p.key for p in credited],
    )
    _note(
        session,
        huddle,
        now,
        messages.HUDDLE_ROOT_RESOLVED.format(name=actor.display_name, entry=entry.id, title=title),
    )
    _refresh_root(session, huddle, now)
    return entry, credited


def cancel(services: Services, session: Session, huddle: Huddle, actor: Person) -> None:
    now = services.clock()
    standing = permissions.require_huddle_closer(actor, huddle, permissions.CANCEL_HUDDLE)
    if huddle.state != HuddleState.OPEN:
        raise HuddleError(messages.HUDDLE_NOT_OPEN.format(id=huddle.id, state=huddle.state.value))
    huddle.state, huddle.closed_at, huddle.closed_by_id = HuddleState.CANCELLED, now, actor.id
    permissions.allowed(
        session, actor, permissions.CANCEL_HUDDLE, f"huddle:{huddle.id}", standing=standing
    )
    metrics.huddle(session, "cancelled")
    jobs.cancel(session, huddle.id)
    _refresh_root(session, huddle, now)


def reopen(services: Services, session: Session, huddle: Huddle, actor: Person) -> None:
    now = services.clock()
    standing = permissions.require_huddle_closer(actor, huddle, permissions.REOPEN_HUDDLE)
    if huddle.state == HuddleState.OPEN:
        raise HuddleError(messages.HUDDLE_NOT_OPEN.format(id=huddle.id, state="already open"))
    before = huddle.state.value
    huddle.state, huddle.closed_at, huddle.closed_by_id = HuddleState.OPEN, None, None
    permissions.allowed(
        session,
        actor,
        permissions.REOPEN_HUDDLE,
        f"huddle:{huddle.id}",
        standing=standing,
        was=before,
    )
    if huddle.first_reply_at is None:
        _schedule_ladder(services, session, huddle, now)
    _schedule_expiry(services, session, huddle, now)
    _note(session, huddle, now, messages.HUDDLE_REOPENED_NOTE.format(name=actor.display_name))
    _refresh_root(session, huddle, now)


def open_huddles(session: Session, actor: Person, *, team: bool) -> list[Huddle]:
    query = (
        select(Huddle)
        .where(Huddle.state == HuddleState.OPEN)
        .options(selectinload(Huddle.participants), selectinload(Huddle.requester))
        .order_by(Huddle.created_at.desc(), Huddle.id.desc())
        .limit(20)
    )
    if team:
        query = query.where(Huddle.team_id == actor.team_id)
    else:
        mine = select(HuddleParticipant.huddle_id).where(HuddleParticipant.person_id == actor.id)
        query = query.where(or_(Huddle.requester_id == actor.id, Huddle.id.in_(mine)))
    return list(session.scalars(query))
