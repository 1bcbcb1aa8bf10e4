"""Who may do what: one rule per act, the same function from every path.

Chat commands, Slack and Teams buttons and forms, the local chat, the dashboard's
forms and its import, the CSV and JSONL import and the command line all ask these
functions, and nothing else, whether an act is allowed. `docs/permissions.md` is
the table of these rules (act × role × path); `tests/test_permissions.py` reads it
and runs every cell through the path it names.

Each `require_*` raises `Denied` (audited by whoever catches it, in a transaction
of its own) and says nothing about the target beyond what the refusal needs.
The `may_*` functions answer the same question without raising, for pages that
show a form only to those who may send it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, false, true
from sqlalchemy.orm import Session

from bot import messages
from bot.db.models import Huddle, KnowledgeEntry, Person, Role, Tag, Team
from bot.services.audit import Denied, record
from bot.services.people import can_manage

# The acts, as the audit log names them (allowed or refused: `allowed` tells them apart).
RESOLVE_HUDDLE = "resolve_huddle"
CANCEL_HUDDLE = "cancel_huddle"
REOPEN_HUDDLE = "reopen_huddle"
ANSWER_HUDDLE = "answer_huddle"
INVITE_TO_HUDDLE = "invite_to_huddle"
TAG = "skill.tag"
UNTAG = "skill.untag"
VERIFY = "skill.verify"
UNVERIFY = "skill.unverify"
CHANGE_ROLE = "change_role"
IMPORT_PERSON = "import_person"
LINK_ACCOUNT = "link_account"
EDIT_KNOWLEDGE = "edit_knowledge"
DELETE_KNOWLEDGE = "delete_knowledge"
PAIR_MENTOR = "mentor.pair"
UNPAIR_MENTOR = "mentor.unpair"
# Expertise that grows (`bot/services/earned.py`): a lead's word on what the evidence
# suggests, and on a verified skill gone quiet.
ACCEPT_SUGGESTION = "skill.suggestion.accept"
CHANGE_SUGGESTION = "skill.suggestion.change"
DISMISS_SUGGESTION = "skill.suggestion.dismiss"
CONFIRM_SKILL = "skill.reverify.confirm"
LOWER_SKILL = "skill.reverify.lower"
DESCRIBE_TAG = "describe_tag"

# How someone stands to a huddle (the rows of the table's huddle section).
ASKER = "asker"
INVITED = "invited expert"
REPLIED = "joined by replying"
TEAM_LEAD = "lead of the asker's team"
ADMIN = "admin"


@dataclass(frozen=True)
class Operator:
    """Whoever runs `whoknows` at the server's command line. They hold the database
    itself, so they may do what an admin may; the audit log names them by `label`."""

    label: str


Actor = Person | Operator


def _is_admin(actor: Actor) -> bool:
    return isinstance(actor, Operator) or actor.role == Role.ADMIN


def _label(actor: Actor) -> str:
    return actor.label if isinstance(actor, Operator) else actor.key


def _id(actor: Actor) -> int | None:
    return None if isinstance(actor, Operator) else actor.id


def refusal(actor: Actor, action: str, target: str, message: str, **detail: object) -> Denied:
    return Denied(
        message,
        actor_id=_id(actor),
        action=action,
        target=target,
        actor_label=_label(actor),
        **detail,
    )


def allowed(session: Session, actor: Actor, action: str, target: str, **detail: object) -> None:
    """The audit row of an allowed act."""
    record(session, _id(actor), action, target, actor_label=_label(actor), **detail)


# --- huddles ---------------------------------------------------------------------------


def huddle_standing(actor: Person, huddle: Huddle) -> str | None:
    """The asker, an invited expert (invited at any step, declined or not), an admin, or
    a lead of the asker's team (the team it was asked in, or the asker's team now)."""
    if actor.id == huddle.requester_id:
        return ASKER
    if any(p.person_id == actor.id and p.invited for p in huddle.participants):
        return INVITED
    if actor.role == Role.ADMIN:
        return ADMIN
    teams = {huddle.team_id, huddle.requester.team_id if huddle.requester else None} - {None}
    if actor.role == Role.LEAD and actor.team_id is not None and actor.team_id in teams:
        return TEAM_LEAD
    return None


def require_huddle_closer(actor: Person, huddle: Huddle, action: str) -> str:
    """Resolve, cancel or reopen: the asker, an invited expert, a lead of the asker's team
    or an admin. Anyone else (one who joined by replying included) is refused. Returns how
    the actor stands, for the audit row of the allowed act."""
    standing = huddle_standing(actor, huddle)
    if standing is None:
        joined = any(p.person_id == actor.id for p in huddle.participants)
        raise refusal(
            actor,
            action,
            f"huddle:{huddle.id}",
            messages.HUDDLE_NOT_ALLOWED.format(action=action.split("_")[0], id=huddle.id),
            standing=REPLIED if joined else "no part in it",
        )
    return standing


def require_huddle_party(actor: Person, huddle: Huddle, action: str) -> None:
    """Answer from another platform (the *Answer* form, sent to invited experts): whoever
    may close it, and whoever already joined it by replying."""
    if huddle_standing(actor, huddle) is not None:
        return
    if any(p.person_id == actor.id for p in huddle.participants):
        return
    raise refusal(
        actor,
        action,
        f"huddle:{huddle.id}",
        messages.HUDDLE_NOT_ALLOWED.format(action=action.split("_")[0], id=huddle.id),
    )


def require_suggested(
    actor: Person, topic: str, wanted: Iterable[Person], suggested: set[int]
) -> None:
    """Invitees picked on a *Start huddle thread* button (its value or its picker) must be
    among the experts the ranking suggests to this asker for this question, within its
    fairness and load (`bot.matching`). Named people (`huddle topic @name`) do not come here."""
    forged = [p for p in wanted if p.id not in suggested]
    if forged:
        raise refusal(
            actor,
            INVITE_TO_HUDDLE,
            "huddle:new",
            messages.HUDDLE_NOT_SUGGESTED,
            topic=topic[:80],
            people=[p.key for p in forged],
        )


# --- people ----------------------------------------------------------------------------


def may_edit_profile(actor: Actor, target: Person) -> bool:
    """Their own profile, or a lead of their team, or an admin."""
    if _is_admin(actor):
        return True
    assert isinstance(actor, Person)
    return actor.id == target.id or can_manage(actor, target)


def require_profile_editor(actor: Actor, target: Person, action: str) -> None:
    if not may_edit_profile(actor, target):
        verb = {TAG: "tag", UNTAG: "untag"}.get(action, "change")
        raise refusal(
            actor,
            action,
            f"person:{target.key}",
            messages.NOT_ALLOWED.format(action=verb, name=target.display_name),
        )


def may_verify(actor: Actor, target: Person | None) -> bool:
    """A lead of their team or an admin; nobody verifies their own (`target` None: someone
    not yet made, whom `may_place` puts in the actor's team)."""
    if isinstance(actor, Operator):
        return True
    if target is None:
        return actor.role in {Role.LEAD, Role.ADMIN}
    return actor.id != target.id and (actor.role == Role.ADMIN or can_manage(actor, target))


def require_verifier(actor: Actor, target: Person, action: str = VERIFY, **detail: object) -> None:
    if may_verify(actor, target):
        return
    own = isinstance(actor, Person) and actor.id == target.id
    message = (
        messages.CANNOT_VERIFY_SELF
        if own
        else messages.NOT_ALLOWED.format(action="verify", name=target.display_name)
    )
    raise refusal(actor, action, f"person:{target.key}", message, **detail)


def verifiable(actor: Actor) -> ColumnElement[bool]:
    """`may_verify` as a condition on `Person`: everyone the actor may verify (and so
    see and decide the skills the evidence suggests for, and re-verify)."""
    if _is_admin(actor):
        return true() if isinstance(actor, Operator) else Person.id != actor.id
    if actor.role != Role.LEAD or actor.team_id is None:
        return false()
    return and_(Person.team_id == actor.team_id, Person.id != actor.id)


def may_dismiss_suggestion(actor: Actor, target: Person) -> bool:
    """Dismissing a skill the evidence suggests is a lead's word on someone's expertise,
    as verifying is: a lead of their team or an admin, never on one's own. (Accepting
    it, or setting another level, verifies it: `require_verifier`.)"""
    return may_verify(actor, target)


def require_suggestion_dismisser(actor: Actor, target: Person, **detail: object) -> None:
    if may_dismiss_suggestion(actor, target):
        return
    own = isinstance(actor, Person) and actor.id == target.id
    message = (
        messages.CANNOT_DECIDE_SELF
        if own
        else messages.NOT_ALLOWED.format(action="decide on", name=target.display_name)
    )
    raise refusal(actor, DISMISS_SUGGESTION, f"person:{target.key}", message, **detail)


def may_change_role(actor: Actor, before: Role | None, after: Role) -> bool:
    """Only an admin makes or unmakes a lead or an admin (`before` None: someone new, an
    agent unless said otherwise)."""
    return (before or Role.AGENT) == after or _is_admin(actor)


def require_role_changer(
    actor: Actor, target_key: str, before: Role | None, after: Role, **detail: object
) -> None:
    if not may_change_role(actor, before, after):
        raise refusal(
            actor,
            CHANGE_ROLE,
            f"person:{target_key}",
            messages.ROLE_NOT_ALLOWED,
            before=(before or Role.AGENT).value,
            after=after.value,
            **detail,
        )


def may_place(actor: Actor, team_id: int | None) -> bool:
    """Put someone in a team (a new person, or someone moved): an admin anywhere, a lead
    in their own team only."""
    if _is_admin(actor):
        return True
    assert isinstance(actor, Person)
    return actor.role == Role.LEAD and actor.team_id is not None and actor.team_id == team_id


def may_link(actor: Actor) -> bool:
    """Linking accounts and e-mails to a person, and merging people, rewrites who is who:
    admins only (the operator at the command line too)."""
    return _is_admin(actor)


def require_linker(actor: Actor, target: Person | None = None) -> None:
    if not may_link(actor):
        raise refusal(
            actor,
            LINK_ACCOUNT,
            f"person:{target.key}" if target is not None else "accounts",
            messages.LINK_NOT_ALLOWED,
        )


# --- mentors --------------------------------------------------------------------------


def may_pair_mentor(actor: Actor, learner: Person) -> bool:
    """Pair a learner with a mentor, end their pair, or see mentors suggested for them
    with a *Pair* button: a lead of the learner's team or an admin. A learner who is an
    agent asks their leads instead (`mentor.request`)."""
    if _is_admin(actor):
        return True
    assert isinstance(actor, Person)
    return can_manage(actor, learner)


def require_mentor_pairer(actor: Actor, learner: Person, action: str = PAIR_MENTOR) -> None:
    if not may_pair_mentor(actor, learner):
        raise refusal(
            actor,
            action,
            f"person:{learner.key}",
            messages.MENTOR_NOT_ALLOWED.format(name=learner.display_name),
        )


# --- teams ----------------------------------------------------------------------------

SET_TEAM_CHANNEL = "set_team_channel"


def may_set_team_channels(actor: Person, team: Team) -> bool:
    """Where a team's huddle threads go and where escalations call: its lead, or an admin
    (the `team` command acts on the actor's own team)."""
    if actor.role == Role.ADMIN:
        return True
    return actor.role == Role.LEAD and actor.team_id == team.id


def require_team_settings(actor: Person, team: Team) -> None:
    if not may_set_team_channels(actor, team):
        raise refusal(actor, SET_TEAM_CHANNEL, f"team:{team.name}", messages.TEAM_NOT_ALLOWED)


SET_TEAM_DIGEST = "team.digest"


def require_digest_settings(actor: Person, team: Team) -> None:
    """The weekly digest's day, time, zone, leaderboard, on or off: a team setting, the
    same rule as its channels."""
    if not may_set_team_channels(actor, team):
        raise refusal(actor, SET_TEAM_DIGEST, f"team:{team.name}", messages.DIGEST_NOT_ALLOWED)


# --- knowledge -------------------------------------------------------------------------


def _leads_an_author(actor: Person, entry: KnowledgeEntry) -> bool:
    """A lead of an author's team (any lead, for an entry nobody signed)."""
    return actor.role == Role.LEAD and (
        not entry.authors or any(can_manage(actor, author) for author in entry.authors)
    )


def may_edit_knowledge(actor: Person, entry: KnowledgeEntry) -> bool:
    """An author, an admin, or a lead of an author's team (any lead for an unsigned entry)."""
    if actor.role == Role.ADMIN or any(author.id == actor.id for author in entry.authors):
        return True
    return _leads_an_author(actor, entry)


def require_knowledge_editor(actor: Person, entry: KnowledgeEntry) -> None:
    if not may_edit_knowledge(actor, entry):
        raise refusal(
            actor,
            EDIT_KNOWLEDGE,
            f"knowledge:{entry.id}",
            messages.KB_EDIT_NOT_ALLOWED.format(id=entry.id),
        )


def may_delete_knowledge(actor: Person, entry: KnowledgeEntry) -> bool:
    """Deleting loses knowledge: admins, and leads over an author, only."""
    return actor.role == Role.ADMIN or _leads_an_author(actor, entry)


def require_knowledge_deleter(actor: Person, entry: KnowledgeEntry) -> None:
    if not may_delete_knowledge(actor, entry):
        raise refusal(
            actor,
            DELETE_KNOWLEDGE,
            f"knowledge:{entry.id}",
            messages.KB_DELETE_NOT_ALLOWED.format(id=entry.id),
        )


# --- topics ----------------------------------------------------------------------------


def may_describe_tag(actor: Actor) -> bool:
    """A tag's description and example questions teach its model what its questions look
    like, for the whole organisation: leads and admins (and the operator's tags file)."""
    return _is_admin(actor) or (isinstance(actor, Person) and actor.role == Role.LEAD)


def require_tag_describer(actor: Actor, tag: Tag) -> None:
    if not may_describe_tag(actor):
        raise refusal(
            actor, DESCRIBE_TAG, f"tag:{tag.name}", messages.LEARNING_DESCRIBE_NOT_ALLOWED
        )
