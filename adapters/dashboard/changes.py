"""The forms: tag, untag, verify and set levels; decide suggested skills and re-verify old
ones; link accounts and merge people (admins); import people; edit and delete knowledge;
describe a topic.

Each runs a service as the signed-in person, so the service's permission
check and audit row apply exactly as they do in chat. The result is said on
the page the form returns to (post, redirect, get).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

from aiohttp import web
from sqlalchemy.orm import Session

from adapters.dashboard import DASHBOARD, ChangeError, auth, imports
from adapters.dashboard.auth import PREFIX, Refusal, require_lead, viewer_of
from adapters.dashboard.render import page
from bot import messages
from bot.db.models import Person
from bot.services import accounts, earned, expertise, knowledge, learning, people
from bot.services.expertise import SkillSpec

LEVEL_SET = "{name}: {skills}."
NO_FILE = auth.Reason("No file", "Choose a CSV file to import.", 400)


def _local(path: str, fallback: str) -> str:
    """Only a dashboard path is a place to return to (never another site)."""
    safe = path.startswith(PREFIX + "/") and "//" not in path and "\\" not in path
    return path if safe else fallback


async def _form(request: web.Request) -> dict[str, str]:
    form = await request.post()
    return {name: value for name, value in form.items() if isinstance(value, str)}


async def _apply(
    request: web.Request, work: Callable[[Session, Person], str], back: str
) -> web.Response:
    dashboard = request.app[DASHBOARD]
    try:
        text, kind = await dashboard.change(viewer_of(request).id, work), "success"
    except ChangeError as error:
        text, kind = str(error), "error"
    response = web.Response(status=303, headers={"Location": back})
    auth.flash(response, dashboard.settings, text, kind, dashboard.services.clock())
    return response


def _level(text: str) -> int:
    try:
        return expertise.parse_level(text)  # ASCII digits: `²` is not a level
    except ValueError as error:
        raise ChangeError(str(error)) from None


def _person(session: Session, key: str) -> Person:
    person = people.by_key(session, key)
    if person is None:
        raise ChangeError(messages.UNKNOWN_PERSON.format(token=key[:120]))
    return person


# -------------------------------------------------------------------- skills


async def tag(request: web.Request) -> web.Response:
    """Give someone a skill (from their profile, or from a gap's "Tag someone")."""
    form = await _form(request)
    key = form.get("person", "")
    back = _local(form.get("back", ""), f"{PREFIX}/people/{key}")
    return await _set_skill(request, form, key, back, messages.TAGGED)


async def set_level(request: web.Request) -> web.Response:
    key = request.match_info["key"]
    form = await _form(request)
    return await _set_skill(request, form, key, f"{PREFIX}/people/{key}", LEVEL_SET)


async def _set_skill(
    request: web.Request, form: dict[str, str], key: str, back: str, said: str
) -> web.Response:
    """Tag, or change a level: the same service, so a lead's word verifies it too."""
    now = request.app[DASHBOARD].services.clock()

    def work(session: Session, actor: Person) -> str:
        target = _person(session, key)
        name = expertise.valid_tag_name(form.get("tag", ""))
        skill = expertise.tag_person(
            session, actor, target, SkillSpec(name, _level(form.get("level", ""))), now
        )
        listed = f"{skill.tag.name} (level {skill.level})"
        if target.id == actor.id:
            return messages.SELF_DECLARED.format(skills=listed)
        return said.format(name=target.display_name, skills=listed)

    return await _apply(request, work, back)


async def verify(request: web.Request) -> web.Response:
    form = await _form(request)
    key = request.match_info["key"]
    now = request.app[DASHBOARD].services.clock()

    def work(session: Session, actor: Person) -> str:
        target = _person(session, key)
        skill = expertise.verify_skill(session, actor, target, form.get("tag", ""), now)
        return messages.VERIFIED.format(
            name=target.display_name, tag=skill.tag.name, level=skill.level
        )

    return await _apply(request, work, f"{PREFIX}/people/{key}")


async def untag(request: web.Request) -> web.Response:
    form = await _form(request)
    key = request.match_info["key"]

    def work(session: Session, actor: Person) -> str:
        target = _person(session, key)
        removed = expertise.untag_person(session, actor, target, form.get("tag", ""))
        return messages.UNTAGGED.format(tag=removed.name, name=target.display_name)

    return await _apply(request, work, f"{PREFIX}/people/{key}")


async def decide_suggestion(request: web.Request) -> web.Response:
    """Accept a suggested skill, set it at another level, or dismiss it (bot/services/earned.py)."""
    form = await _form(request)
    key = request.match_info["key"]
    back = _local(form.get("back", ""), f"{PREFIX}/people/{key}")
    now = request.app[DASHBOARD].services.clock()
    decisions = {"accept": earned.ACCEPTED, "level": earned.CHANGED, "dismiss": earned.DISMISSED}

    def work(session: Session, actor: Person) -> str:
        target = _person(session, key)
        decision = decisions.get(form.get("decision", ""))
        if decision is None:
            raise ChangeError(messages.SUGGESTION_GONE)
        tag = expertise.require_tag(session, form.get("tag", ""))
        suggested = _level(form.get("suggested", ""))
        level = _level(form.get("level", "")) if decision == earned.CHANGED else None
        done = earned.decide(
            session, actor, target.id, tag.id, suggested, now, decision=decision, level=level
        )
        name = target.display_name
        if done.already:
            return messages.SUGGESTION_ALREADY.format(name=name, tag=tag.name)
        if decision == earned.DISMISSED:
            return messages.SUGGESTION_DISMISSED.format(
                name=name, tag=tag.name, days=earned.DISMISS_DAYS
            )
        if decision == earned.ACCEPTED:
            counts = earned.counts_text(done.evidence)
            return messages.SUGGESTION_ACCEPTED.format(
                name=name, tag=tag.name, level=done.level, counts=counts
            )
        return messages.SUGGESTION_CHANGED.format(
            name=name, tag=tag.name, level=done.level, suggested=suggested
        )

    return await _apply(request, work, back)


async def reverify(request: web.Request) -> web.Response:
    """Confirm a verified skill gone quiet at its level, or lower it."""
    form = await _form(request)
    key = request.match_info["key"]
    back = _local(form.get("back", ""), f"{PREFIX}/people/{key}")
    services = request.app[DASHBOARD].services
    after = timedelta(days=services.settings.reverify_after_days)

    def work(session: Session, actor: Person) -> str:
        target = _person(session, key)
        tag = expertise.require_tag(session, form.get("tag", ""))
        field = "current" if form.get("decision") == "confirm" else "level"
        done = earned.reverify(
            session, actor, target.id, tag.id, _level(form.get(field, "")), services.clock(), after
        )
        name = target.display_name
        if done.already:
            return messages.REVERIFY_ALREADY.format(name=name, tag=tag.name, level=done.level)
        if done.level == done.before:
            return messages.REVERIFY_CONFIRMED.format(name=name, tag=tag.name, level=done.level)
        return messages.REVERIFY_LOWERED.format(
            name=name, tag=tag.name, level=done.level, before=done.before
        )

    return await _apply(request, work, back)


# ------------------------------------------------------------------ accounts


def _linkable(session: Session, actor: Person, key: str) -> Person:
    """The person an admin links or merges into; anyone else is refused (and audited)
    before being told whether the person exists."""
    person = people.by_key(session, key)
    accounts.require_linker(actor, person)
    if person is None:
        raise ChangeError(messages.UNKNOWN_PERSON.format(token=key[:120]))
    return person


async def link_account(request: web.Request) -> web.Response:
    """Link a Slack or Teams id, or an e-mail, to the person (admins only)."""
    form = await _form(request)
    key = request.match_info["key"]
    kind, value = form.get("kind", ""), form.get("account", "")

    def work(session: Session, actor: Person) -> str:
        person = _linkable(session, actor, key)
        who = {"actor_label": actor.key, "actor_id": actor.id}
        if kind == "email":
            changed = accounts.give_email(session, person, value, **who)
            said = messages.EMAIL_GIVEN if changed else messages.EMAIL_ALREADY
            return said.format(name=person.display_name, email=value.strip())
        if kind not in accounts.CHAT_PLATFORMS:
            raise ChangeError(messages.LINK_UNKNOWN_KIND)
        changed = accounts.link_by_hand(session, person, kind, value, **who)
        said = messages.LINKED if changed else messages.ALREADY_LINKED
        return said.format(
            account=value.strip(),
            platform=accounts.platform_name(kind),
            name=person.display_name,
            handle=person.key,
        )

    return await _apply(request, work, f"{PREFIX}/people/{key}")


async def merge_people(request: web.Request) -> web.Response:
    """Merge the record `drop` names into the person of the page (admins only)."""
    form = await _form(request)
    key = request.match_info["key"]
    drop_key = form.get("drop", "").strip().lstrip("@")
    back = _local(form.get("back", ""), f"{PREFIX}/people/{key}")

    def work(session: Session, actor: Person) -> str:
        keep = _linkable(session, actor, key)
        if not drop_key:
            raise ChangeError(messages.MERGE_NOBODY.format(name=keep.display_name))
        drop = _person(session, drop_key)
        if form.get("confirm") != "yes":
            raise ChangeError(messages.MERGE_CONFIRM.format(drop=drop.key, keep=keep.key))
        dropped = drop.key
        accounts.merge(session, keep, drop, actor_label=actor.key, actor_id=actor.id)
        return messages.MERGED.format(dropped=dropped, name=keep.display_name, handle=keep.key)

    return await _apply(request, work, back)


async def import_people(request: web.Request) -> web.Response:
    viewer = viewer_of(request)
    require_lead(viewer)
    dashboard = request.app[DASHBOARD]
    upload = (await request.post()).get("file")
    if not isinstance(upload, web.FileField):
        raise Refusal(NO_FILE)
    raw = upload.file.read(imports.MAX_UPLOAD_BYTES + 1)
    result = await asyncio.to_thread(
        imports.import_upload, dashboard.services, viewer.id, raw, dashboard.services.clock()
    )
    return page(request, "import_report.html", title=f"Import of {upload.filename}", report=result)


# ----------------------------------------------------------------- knowledge


async def edit_entry(request: web.Request) -> web.Response:
    form = await _form(request)
    entry_id = request.match_info["entry_id"]
    back = f"{PREFIX}/knowledge/{entry_id}"

    def work(session: Session, actor: Person) -> str:
        entry = knowledge.get(session, int(entry_id)) if entry_id.isdigit() else None
        if entry is None:
            raise ChangeError(messages.KB_NOT_FOUND.format(id=entry_id[:12]))
        if form.get("version") != str(entry.version):
            raise ChangeError(messages.KB_EDIT_CONFLICT.format(id=entry.id))
        tags = expertise.tags_named(session, form.get("tags", ""))
        knowledge.edit(
            session, entry, actor, title=form.get("title", ""), body=form.get("body", ""), tags=tags
        )
        return messages.KB_EDITED.format(id=entry.id)

    return await _apply(request, work, back)


async def delete_entry(request: web.Request) -> web.Response:
    form = await _form(request)
    entry_id = request.match_info["entry_id"]
    if form.get("confirm") != "yes":
        back = f"{PREFIX}/knowledge/{entry_id}"
    else:
        back = f"{PREFIX}/knowledge"

    def work(session: Session, actor: Person) -> str:
        entry = knowledge.get(session, int(entry_id)) if entry_id.isdigit() else None
        if entry is None:
            raise ChangeError(messages.KB_NOT_FOUND.format(id=entry_id[:12]))
        if form.get("confirm") != "yes":
            raise ChangeError("Tick the box to confirm the deletion.")
        title = entry.title
        knowledge.delete(session, entry, actor)
        return messages.KB_DELETED.format(id=entry_id, title=title[:80])

    return await _apply(request, work, back)


# -------------------------------------------------------------------- topics


async def describe_tag(request: web.Request) -> web.Response:
    """A topic's one-line description and example questions (one a line)."""
    form = await _form(request)
    now = request.app[DASHBOARD].services.clock()

    def work(session: Session, actor: Person) -> str:
        tag = expertise.find_tag(session, form.get("tag", ""))
        if tag is None:
            raise ChangeError(messages.UNKNOWN_TAG.format(name=form.get("tag", "")[:80]))
        examples = [line for line in form.get("examples", "").splitlines() if line.strip()]
        count = learning.describe_tag(
            session, actor, tag, form.get("description", ""), examples, now
        )
        return messages.TAG_DESCRIBED.format(name=tag.name, count=count)

    return await _apply(request, work, f"{PREFIX}/tags")


def routes(app: web.Application) -> None:
    app.router.add_post("/people/tag", tag)
    app.router.add_post("/people/import", import_people)
    app.router.add_post("/people/{key}/level", set_level)
    app.router.add_post("/people/{key}/verify", verify)
    app.router.add_post("/people/{key}/untag", untag)
    app.router.add_post("/people/{key}/suggestion", decide_suggestion)
    app.router.add_post("/people/{key}/reverify", reverify)
    app.router.add_post("/people/{key}/link", link_account)
    app.router.add_post("/people/{key}/merge", merge_people)
    app.router.add_post("/knowledge/{entry_id}/edit", edit_entry)
    app.router.add_post("/knowledge/{entry_id}/delete", delete_entry)
    app.router.add_post("/tags/describe", describe_tag)
