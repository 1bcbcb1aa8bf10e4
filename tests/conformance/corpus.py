"""Real replies to check: a newcomer's session through the router on the demo org.

Every command a person can type, the buttons and forms they lead to, refusals and
usage errors, the escalation ladder's steps, and the messages the outbox delivers
(thread roots, direct messages, thread updates, notices), each with the handles the
adapters would pass for it. One reply is made large on purpose: forty experts.

The replies are what the skills return and the outbox keeps; `slack_payloads` and
`teams_payloads` turn them into what each adapter sends, with the adapters' own
functions and arguments (adapters/slack/app.py and messenger.py, adapters/teams/app.py
and messenger.py).
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from adapters.slack import render as slack
from adapters.teams import render as teams
from bot.db.models import Outbox, Person
from bot.router import Router
from bot.runtime import codec, jobs
from bot.runtime.outbox import _with_handles
from bot.services import Services, people
from bot.types import (
    Actions,
    Article,
    Button,
    Command,
    Form,
    Option,
    PersonCard,
    Picker,
    Reply,
)

PLATFORM = "slack"  # the commands' platform: the outbox rows are rendered for both


def slack_id(key: str) -> str:
    return "U" + re.sub(r"[^A-Z0-9]", "", key.upper())


def teams_id(key: str) -> str:
    """An AAD object id, as Teams gives one."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"https://whoknows.example/people/{key}"))


@dataclass
class Sample:
    """One reply as each adapter renders it, with the handles the adapter passes."""

    label: str
    slack: Reply
    teams: Reply
    slack_handles: dict[int, str] = field(default_factory=dict)
    teams_handles: dict[int, str] = field(default_factory=dict)
    # answer (to whoever asked), home (Slack's App Home tab), outbox (a delivery)
    kind: str = "answer"


class Session:
    """Commands typed and buttons pressed by the demo org's people, every reply kept."""

    def __init__(self, services: Services, router: Router) -> None:
        self.services = services
        self.router = router
        self.samples: list[Sample] = []
        with services.db.reading() as session:
            self.ids = {p.key: p.id for p in session.scalars(select(Person))}

    def _keep(self, label: str, command: Command, kind: str = "answer") -> Reply:
        reply = self.router.dispatch(command, self.services)
        named = people.named_in(reply)
        with self.services.db.reading() as session:  # as adapters/commands.py looks them up
            slack_handles = people.handles(session, "slack", named)
            teams_handles = people.handles(session, "teams", named)
        self.samples.append(Sample(label, reply, reply, slack_handles, teams_handles, kind))
        return reply

    def say(self, key: str, name: str, text: str = "") -> Reply:
        mentions = {
            token: self.ids[token[1:]]
            for token in re.findall(r"@[\w.-]+", text)
            if token[1:] in self.ids
        }
        command = Command(PLATFORM, self.ids[key], name, text, mentions=mentions)
        return self._keep(f"{key}: {name} {text}".strip(), command)

    def press(self, key: str, pressed: Button, **values: str) -> Reply:
        command = Command(
            PLATFORM, self.ids[key], "", pressed.value, action_id=pressed.action_id, values=values
        )
        kind = "home" if pressed.action_id == "home.open" else "answer"
        return self._keep(f"{key} presses {pressed.action_id}", command, kind)

    def submit(self, key: str, form: Form, **values: str) -> Reply:
        command = Command(
            PLATFORM, self.ids[key], "", form.value, action_id=form.action_id, values=values
        )
        return self._keep(f"{key} submits {form.action_id}", command)


def buttons(reply: Reply) -> Iterator[tuple[Button, Picker | None]]:
    for element in reply.elements:
        if isinstance(element, Actions):
            for each in element.buttons:
                yield each, element.picker


def button(reply: Reply, action_id: str) -> Button:
    found = [b for b, _ in buttons(reply) if b.action_id == action_id]
    assert found, f"no {action_id} button in {reply}"
    return found[0]


def form_of(reply: Reply) -> Form:
    forms = [e for e in reply.elements if isinstance(e, Form)]
    assert forms, f"no form in {reply}"
    return forms[0]


def huddle_number(reply: Reply) -> int:
    found = re.search(r"#(\d+)", str(reply))
    assert found, reply
    return int(found.group(1))


def link_everyone(services: Services) -> None:
    """Every demo person with a Slack id and a Teams (AAD) id, as after first contact."""
    with services.db.unit_of_work() as session:
        for person in session.scalars(select(Person)):
            people.link_identity(session, person, "slack", slack_id(person.key))
            people.link_identity(session, person, "teams", teams_id(person.key))


def newcomers_session(services: Services, router: Router) -> list[Sample]:
    """Every kind of reply the skills give, in a session as people would have it; then
    the outbox's messages, and one reply with forty experts."""
    link_everyone(services)
    s = Session(services, router)
    # Asking, and what the answer offers.
    s.say("alex", "help")
    s.say("alex", "help", "huddle")
    asked = s.say("alex", "whoknows", "refund for a prepaid top-up")
    s.say("alex", "whoknows", "roaming charges abroad")
    s.say("alex", "whoknows", "quantum entanglement of llamas")  # nobody: a knowledge gap
    s.say("alex", "whoknows", "")
    s.say("alex", "whoknows", "<!channel> & <@U1> *x* [x](https://evil.example) {{DATE(2017)}}")
    s.say("alex", "refunds")  # a topic alone, no command word
    s.say("alex", "whoknos", "refunds")  # a typo
    s.press("alex", button(asked, "kb.helpful"))
    s.press("alex", button(asked, "kb.helpful"))  # once only
    # Knowledge.
    found = s.say("alex", "kb", "prepaid top-up wrong number")
    entry = next(e for e in found.elements if isinstance(e, Article)).entry_id
    s.say("alex", "kb", f"show {entry}")
    s.say("alex", "kb", "show 999999")
    s.say("alex", "kb", "show 99999999999999999999")
    s.say("alex", "kb", "")
    edit = s.say("priya", "kb", f"edit {entry}")
    s.submit(
        "priya", form_of(edit), title="Wrong-number top-ups", answer="Reverse.", tags="refunds"
    )
    s.say("priya", "kb", f"edit {entry} Wrong-number top-ups | Reverse with TU-07 | refunds")
    s.say("omar", "kb", f"edit {entry} Mine | mine")  # refused
    s.say("omar", "kb", f"delete {entry}")  # refused
    s.say("priya", "kb", f"helpful {entry}")
    # Presence.
    s.say("maria", "status")
    s.say("maria", "busy", "30m")
    s.say("maria", "status", "busy 1h")
    s.say("maria", "away")
    s.say("maria", "oncall")
    s.say("maria", "off")
    s.say("maria", "status", "sleeping forever")
    s.say("maria", "available")
    # Expertise.
    s.say("alex", "expertise")
    s.say("alex", "expertise", "show @maria")
    s.say("alex", "expertise", "tag refunds:3")
    s.say("priya", "expertise", "tag @maria chargebacks:4, late fees:2")
    s.say("priya", "expertise", "verify @alex refunds")
    s.say("priya", "expertise", "untag @maria late fees")
    s.say("alex", "expertise", "verify @maria refunds")  # refused: not a lead
    s.say("alex", "expertise", "tag refunds:11")
    # Teams and the dashboard.
    s.say("priya", "team")
    s.say("alex", "team", "huddles #billing-huddles")  # refused: not a lead
    s.say("alex", "dashboard")
    # Huddles: from the button, and typed.
    start, experts = next((b, p) for b, p in buttons(asked) if b.action_id == "huddle.start")
    assert experts is not None
    chosen = ",".join(o.value for o in experts.options[:2])
    first = huddle_number(s.press("alex", start, **{experts.name: chosen}))
    second = huddle_number(s.say("alex", "huddle", "late fees @omar"))
    s.say("alex", "huddle", "")
    s.say("alex", "huddle", "list")
    s.say("priya", "huddle", "list team")
    s.say("omar", "huddle", f"reply {first} Raise a Top-up Reversal, code TU-07.")
    s.say("omar", "huddle", f"decline {second}")
    # The escalation ladder: each step a message in the thread, a call, a lead's DM.
    for _ in services.settings.escalation_ladder:
        services.clock.advance(services.settings.escalation_timeout_s)  # type: ignore[attr-defined]
        jobs.run_due(services)
    resolve = s.say("alex", "huddle", f"resolve {first}")
    s.submit(
        "alex", form_of(resolve), title="Wrong-number top-ups", answer="TU-07.", tags="refunds"
    )
    s.say("alex", "huddle", f"cancel {second}")
    s.say("alex", "huddle", f"reopen {second}")
    s.say("alex", "huddle", f"resolve {second} Late fees | Waive once in 12 months | late fees")
    s.say("alex", "huddle", "resolve 999999")
    s.say("alex", "huddle", "reply")
    # The home tab, an agent's and a lead's.
    home = Button("", "home.open", "")
    s.press("alex", home)
    s.press("priya", home)
    return [*s.samples, *outbox_samples(services), forty_experts(asked)]


def outbox_samples(services: Services) -> list[Sample]:
    """Each queued message as bot/runtime/outbox.py delivers it: mentions with the platform's
    handles filled in, and no others (the Messengers render them without)."""
    samples = []
    with services.db.reading() as session:
        for row in session.scalars(select(Outbox).order_by(Outbox.id)):
            kept = codec.loads(row.body)
            samples.append(
                Sample(
                    f"outbox {row.kind} #{row.id}",
                    _with_handles(session, "slack", kept),
                    _with_handles(session, "teams", kept),
                    kind="outbox",
                )
            )
    return samples


def forty_experts(asked: Reply, count: int = 40) -> Sample:
    """The answer to `asked` with forty experts (its own cards over and over, each a new
    person): the picker and the cards past every count and size limit."""
    cards = [e for e in asked.elements if isinstance(e, PersonCard)]
    assert cards, asked
    many = [
        dataclasses.replace(cards[n % len(cards)], person_id=10_000 + n, key=f"expert{n}")
        for n in range(count)
    ]
    options = tuple(Option(str(c.person_id), c.name) for c in many)
    elements = []
    for element in asked.elements:
        if isinstance(element, PersonCard):
            continue
        if isinstance(element, Actions) and element.picker is not None:
            element = dataclasses.replace(
                element, picker=dataclasses.replace(element.picker, options=options)
            )
            elements.extend(many)
        elements.append(element)
    reply = Reply(tuple(elements))
    return Sample(
        f"{count} experts",
        reply,
        reply,
        {c.person_id: slack_id(c.key) for c in many},
        {c.person_id: teams_id(c.key) for c in many},
    )


Payload = tuple[str, str, dict[str, Any]]  # (API method, "message" or "view", body)


def slack_payloads(sample: Sample) -> list[Payload]:
    """What the Slack adapter sends for a sample, as SlackAdapter.answer, on_home and
    SlackMessenger build it."""
    reply = sample.slack
    if sample.kind == "home":
        return [("views.publish", "view", slack.home_view(reply))]
    if sample.kind == "outbox":
        message = {"blocks": slack.render_blocks(reply), "text": slack.fallback_text(reply)}
        return [("chat.postMessage", "message", message)]
    handles = sample.slack_handles
    sent: list[Payload] = []
    forms = [e for e in reply.elements if isinstance(e, Form)]
    if forms:  # with a trigger id: the form as a modal, the rest as the answer
        sent.append(("views.open", "view", slack.modal_view(forms[0])))
        rest = Reply(tuple(e for e in reply.elements if not isinstance(e, Form)), reply.private)
        if rest.elements:
            blocks, text = slack.render_blocks(rest, handles=handles), slack.fallback_text(rest)
            sent.append(("response_url", "message", {"blocks": blocks, "text": text}))
    # Without one (an @mention in a channel), or with no form: the whole reply as a message.
    blocks, text = slack.render_blocks(reply, handles=handles), slack.fallback_text(reply)
    sent.append(("response_url", "message", {"blocks": blocks, "text": text}))
    return sent


def teams_activity(sample: Sample) -> dict[str, Any]:
    """The activity the Teams adapter sends: an answer with the handles of the people it
    names (TeamsMessenger.answer), a delivery without (TeamsMessenger.post and the rest)."""
    if sample.kind == "outbox":
        return teams.render_activity(sample.teams)
    return teams.render_activity(sample.teams, handles=sample.teams_handles)
