"""A neutral Reply → Slack Block Kit, one function per element type.

Every piece of user text goes through `escape` (so it can never ping a channel,
a user or a group) and then through a limit-aware truncation that cuts on
grapheme boundaries. `plain_text` objects (button labels, options, modal labels
and titles) are not escaped: Slack shows them verbatim and never turns them into
mentions, so escaping would only put `&amp;` on screen.

Duplicate action ids inside one actions block are suffixed `~2`, `~3`, …
(Slack requires them unique per block); `action_name` strips the suffix, and
the adapter calls it on every `action_id` that comes back.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from functools import singledispatch
from types import MappingProxyType
from typing import Any

from bot import messages
from bot.text import is_grapheme_boundary
from bot.types import (
    Actions,
    Article,
    Button,
    Form,
    FormField,
    Line,
    Mention,
    Notice,
    PersonCard,
    Picker,
    Reply,
    Text,
)

log = logging.getLogger(__name__)

# Slack's limits (Block Kit reference): blocks per surface, text per field.
MESSAGE_BLOCKS = 50
VIEW_BLOCKS = 100
SECTION_TEXT = 3_000
CONTEXT_TEXT = 2_000
CONTEXT_ELEMENTS = 10
ACTIONS_ELEMENTS = 25
BUTTON_TEXT = 75
BUTTON_VALUE = 2_000
ACTION_ID = 255
SUFFIX_ROOM = 8  # "~N" added to repeated action ids must still fit
OPTION_TEXT = 75
OPTION_VALUE = 150
SELECT_OPTIONS = 100
PLACEHOLDER = 150
INPUT_LABEL = 2_000
INPUT_MAX_LENGTH = 3_000
VIEW_TITLE = 24  # also submit and close
FALLBACK_TEXT = 3_000
# Our own bounds on parts of a section, so a long title cannot crowd out the rest.
NAME_TEXT = 200
TITLE_TEXT = 250

PRESENCE_EMOJI = {
    "available": "🟢",
    "busy": "🟠",
    "on_call": "📞",
    "away": "🌙",
    "off": "⚫",
    "off_shift": "💤",
}
UNKNOWN_PRESENCE = "⚪"
NOTICE_EMOJI = {"info": "ℹ️", "success": "✅", "warning": "⚠️", "error": "❌"}
VERIFIED = "✓"
ELLIPSIS = "…"

# Wording this renderer adds around the neutral text.
MESSAGE_BUTTON = "Message"
CANCEL = "Cancel"
THEIR_TIME = "their time"
FOUND_HELPFUL = "{count} found it helpful"
FORM_IN_DIALOG = "📝 *{title}* opens in a dialog."
MORE = "…and {count} more"

# A link button still sends a block_actions payload when clicked; the adapter
# acknowledges this action id and does nothing else.
LINK_ACTION = "link.open"
APP_REDIRECT = "https://slack.com/app_redirect?channel={user}"
# Slack user ids (U… / W… on Enterprise Grid); anything else is never put in a token.
_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
_SUFFIX = re.compile(r"~\d+$")
# `handles` when nobody looked them up (a delivery, a view): a card without one is not
# taken for someone without a Slack account.
UNKNOWN: Mapping[int, str] = MappingProxyType({})


# --- escaping and grapheme-safe truncation ---------------------------------------------


def escape(text: str) -> str:
    """Slack's three control characters as entities: `<!channel>` becomes inert text."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _length(text: str) -> int:
    """UTF-16 code units: never fewer than code points, so limits hold however Slack counts."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def truncate(text: str, limit: int) -> str:
    """At most `limit` characters, cut between graphemes, ending with "…" when cut.

    Length is counted in UTF-16 code units, which is never less than the number of
    code points: the result fits Slack's limits whichever of the two it counts.
    """
    if limit <= 0:
        return ""
    if len(text) <= limit and _length(text) <= limit:
        return text
    budget = limit - len(ELLIPSIS)
    cut = min(len(text), budget)
    # A code point is one or two units: dropping half the excess in code points never
    # drops more than needed, so this ends on the longest prefix within the budget.
    while (over := _length(text[:cut]) - budget) > 0:
        cut -= (over + 1) // 2
    while cut > 0 and not is_grapheme_boundary(text, cut):
        cut -= 1
    return text[:cut].rstrip() + ELLIPSIS


def _fit(mrkdwn: str, limit: int) -> str:
    """Truncate escaped mrkdwn without leaving half an entity (`&am…`) or token (`<@U1…`)."""
    cut = truncate(mrkdwn, limit)
    if cut == mrkdwn:
        return cut
    body = cut[: -len(ELLIPSIS)]
    opened = body.rfind("<")
    if opened > body.rfind(">"):
        body = body[:opened]
    amp = body.rfind("&")
    if amp != -1 and ";" not in body[amp:]:
        body = body[:amp]
    return body.rstrip() + ELLIPSIS


def _safe(text: str, limit: int) -> str:
    return _fit(escape(text), limit)


def action_name(action_id: str) -> str:
    """The action id as the bot knows it: `kb.helpful~2` → `kb.helpful`."""
    return _SUFFIX.sub("", action_id)


# --- small Block Kit builders ----------------------------------------------------------


def _plain(text: str, limit: int) -> dict[str, Any]:
    return {"type": "plain_text", "text": truncate(text, limit) or " "}


def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text}


def _section(text: str, accessory: dict[str, Any] | None = None) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "section", "text": _mrkdwn(_fit(text, SECTION_TEXT))}
    if accessory is not None:
        block["accessory"] = accessory
    return block


def _context(texts: Iterable[str]) -> dict[str, Any]:
    elements = [_mrkdwn(_fit(t, CONTEXT_TEXT)) for t in texts][:CONTEXT_ELEMENTS]
    return {"type": "context", "elements": elements}


def _user_id(person_id: int, handles: Mapping[int, str], handle: str | None = None) -> str | None:
    user = handle or handles.get(person_id)
    return user if user is not None and _USER_ID.match(user) else None


# --- one renderer per element type -----------------------------------------------------


@singledispatch
def render_element(element: object, handles: Mapping[int, str]) -> list[dict[str, Any]]:
    raise TypeError(f"no Slack rendering for {type(element).__name__}")


@render_element.register
def _(element: Text, handles: Mapping[int, str]) -> list[dict[str, Any]]:
    if not element.text.strip():
        return []  # Slack rejects a section without text
    return [_section(escape(element.text))]


@render_element.register
def _(element: Notice, handles: Mapping[int, str]) -> list[dict[str, Any]]:
    emoji = NOTICE_EMOJI.get(element.severity, NOTICE_EMOJI["info"])
    return [_section(f"{emoji} {escape(element.text)}")]


def _line(element: Line, handles: Mapping[int, str]) -> str:
    parts = []
    for part in element.parts:
        if isinstance(part, Mention):
            user = _user_id(part.person_id, handles, part.handle)
            # Without a Slack id the name is plain text: never a ping, never a guess.
            parts.append(f"<@{user}>" if user else escape(part.name))
        else:
            parts.append(escape(part))
    return "".join(parts)


@render_element.register
def _(element: Line, handles: Mapping[int, str]) -> list[dict[str, Any]]:
    text = _line(element, handles)
    return [_section(text)] if text.strip() else []


@render_element.register
def _(element: PersonCard, handles: Mapping[int, str]) -> list[dict[str, Any]]:
    presence = element.presence
    user = _user_id(element.person_id, handles)
    emoji = PRESENCE_EMOJI.get(presence.status, UNKNOWN_PRESENCE)
    head = f"{emoji} *{_safe(element.name, NAME_TEXT)}*"
    if user:
        head += f" <@{user}>"
    elif handles is not UNKNOWN:
        # Still worth knowing about, and in the huddle picker: the thread can mention
        # them by name only, and no DM reaches them until their account is linked.
        head += f" · _{escape(messages.NOT_ON_SLACK)}_"
    if element.team:
        head += f" · {_safe(element.team, NAME_TEXT)}"
    status = escape(presence.label)
    if presence.until_local:
        status += f" until {escape(presence.until_local)}"
    if presence.local_time:
        status += f" · {escape(presence.local_time)} {THEIR_TIME}"
    lines = [head, status]
    if element.tags:
        lines.append(
            ", ".join(
                f"{escape(t.name)} {t.level}{' ' + VERIFIED if t.verified else ''}"
                for t in element.tags
            )
        )
    accessory = None
    if user:
        accessory = {
            "type": "button",
            "text": _plain(MESSAGE_BUTTON, BUTTON_TEXT),
            "action_id": LINK_ACTION,
            "url": APP_REDIRECT.format(user=user),
        }
        contact = element.contact
        if contact is not None and _button(contact, set()) is not None:
            # A link button still sends its click to the app: the contact is evidence.
            accessory["action_id"] = contact.action_id
            if contact.value:
                accessory["value"] = contact.value
    blocks = [_section("\n".join(lines), accessory)]
    if element.reason.strip():
        mark = messages.BASIS_MARK.get(element.basis)
        blocks.append(
            _context([f"{mark} {escape(element.reason)}" if mark else escape(element.reason)])
        )
    if element.buttons:
        blocks.extend(render_element(Actions(element.buttons), handles))
    return blocks


@render_element.register
def _(element: Article, handles: Mapping[int, str]) -> list[dict[str, Any]]:
    text = f"*#{element.entry_id} {_safe(element.title, TITLE_TEXT)}*"
    if element.snippet.strip():
        text += f"\n{escape(element.snippet)}"
    blocks = [_section(text)]
    notes = []
    tags = " · ".join(escape(tag) for tag in element.tags if tag.strip())
    if tags:  # Slack rejects an empty text object
        notes.append(tags)
    if element.helpful:
        notes.append(FOUND_HELPFUL.format(count=element.helpful))
    if notes:
        blocks.append(_context(notes))
    return blocks


def _unique(action_id: str, seen: set[str]) -> str:
    candidate, number = action_id, 1
    while candidate in seen:
        number += 1
        candidate = f"{action_id}~{number}"
    seen.add(candidate)
    return candidate


def _option(option_value: str, label: str) -> dict[str, Any]:
    return {"text": _plain(label, OPTION_TEXT), "value": option_value}


def _picker(picker: Picker, seen: set[str]) -> dict[str, Any] | None:
    options = []
    for option in picker.options:
        if not option.value or _length(option.value) > OPTION_VALUE:
            # A cut value would select something else; leaving the option out is safer.
            log.warning("picker %s: option value too long for Slack, left out", picker.name)
            continue
        options.append(_option(option.value, option.label))
    options = options[:SELECT_OPTIONS]
    if not options:
        return None  # Slack rejects a select without options
    element: dict[str, Any] = {
        "type": "multi_static_select",
        "action_id": _unique(picker.name, seen),
        "placeholder": _plain(picker.label, PLACEHOLDER),
        "options": options,
    }
    chosen = set(picker.selected)
    initial = [o for o in options if o["value"] in chosen]
    if initial:
        element["initial_options"] = initial
    return element


def _button(button: Button, seen: set[str]) -> dict[str, Any] | None:
    if _length(button.value) > BUTTON_VALUE or _length(button.action_id) > ACTION_ID - SUFFIX_ROOM:
        log.warning("button %s: value or action id too long for Slack, left out", button.action_id)
        return None
    element: dict[str, Any] = {
        "type": "button",
        "text": _plain(button.label, BUTTON_TEXT),
        "action_id": _unique(button.action_id, seen),
    }
    if button.value:
        element["value"] = button.value
    if button.style in {"primary", "danger"}:
        element["style"] = button.style
    return element


@render_element.register
def _(element: Actions, handles: Mapping[int, str]) -> list[dict[str, Any]]:
    seen: set[str] = set()
    elements: list[dict[str, Any]] = []
    if element.picker is not None:
        picker = _picker(element.picker, seen)
        if picker is not None:
            elements.append(picker)
    for button in element.buttons:
        rendered = _button(button, seen)
        if rendered is not None:
            elements.append(rendered)
    return [
        {"type": "actions", "elements": elements[start : start + ACTIONS_ELEMENTS]}
        for start in range(0, len(elements), ACTIONS_ELEMENTS)
    ]


@render_element.register
def _(element: Form, handles: Mapping[int, str]) -> list[dict[str, Any]]:
    return [_section(FORM_IN_DIALOG.format(title=_safe(element.title, TITLE_TEXT)))]


# --- messages and views ----------------------------------------------------------------


def render_blocks(
    reply: Reply,
    *,
    handles: Mapping[int, str] | None = None,
    max_blocks: int = MESSAGE_BLOCKS,
) -> list[dict[str, Any]]:
    """Block Kit blocks for a message; `handles` maps our person ids to Slack user ids.

    Past `max_blocks`, whole elements are kept while they fit in one block fewer,
    and a last context block says how many elements were left out.
    """
    handles = UNKNOWN if handles is None else handles
    groups = [render_element(element, handles) for element in reply.elements]
    if sum(map(len, groups)) <= max_blocks:
        return [block for group in groups for block in group]
    blocks: list[dict[str, Any]] = []
    shown = 0
    for group in groups:
        if len(blocks) + len(group) > max_blocks - 1:
            break
        blocks.extend(group)
        shown += 1
    if shown == 0:  # one element larger than the whole message: keep what fits
        blocks, shown = groups[0][: max_blocks - 1], 1
    blocks.append(_context([MORE.format(count=len(groups) - shown)]))
    return blocks


@singledispatch
def _summary(element: object) -> str:
    return ""


@_summary.register
def _(element: Text) -> str:
    return escape(element.text)


@_summary.register
def _(element: Notice) -> str:
    return escape(element.text)


@_summary.register
def _(element: Line) -> str:
    return _line(element, {})


@_summary.register
def _(element: PersonCard) -> str:
    return escape(element.name)


@_summary.register
def _(element: Article) -> str:
    return f"#{element.entry_id} {escape(element.title)}"


@_summary.register
def _(element: Form) -> str:
    return escape(element.title)


def render_message(reply: Reply, *, handles: Mapping[int, str] | None = None) -> dict[str, Any]:
    """A message's `blocks` and its fallback `text`, the blocks rendered once."""
    blocks = render_blocks(reply, handles=handles)
    return {"blocks": blocks, "text": _fallback(reply, bool(blocks))}


def fallback_text(reply: Reply) -> str:
    """The plain `text` Slack shows in notifications: the first words of the reply."""
    return render_message(reply)["text"]


def _fallback(reply: Reply, has_blocks: bool) -> str:
    words = (Text, Notice, Line)
    ordered = [e for e in reply.elements if isinstance(e, words)] + [
        e for e in reply.elements if not isinstance(e, words)
    ]
    for element in ordered:
        text = _summary(element).strip()
        if text:
            return _fit(text, FALLBACK_TEXT)
    # No words of its own (buttons alone, a card with a blank name): Slack still wants
    # a `text` for notifications and screen readers, on any message it is sent.
    return messages.SLACK_FALLBACK if has_blocks else ""


def _input(field: FormField) -> dict[str, Any]:
    element: dict[str, Any]
    options = [
        _option(choice, choice)
        for choice in field.options
        if field.kind == "select" and choice and _length(choice) <= OPTION_VALUE
    ][:SELECT_OPTIONS]
    if options:  # Slack rejects a select without options: then the field is typed in
        element = {"type": "static_select", "action_id": field.name, "options": options}
        initial = next((o for o in options if o["value"] == field.value), None)
        if initial is not None:
            element["initial_option"] = initial
    else:
        element = {
            "type": "plain_text_input",
            "action_id": field.name,
            "multiline": field.kind == "multiline",
            "max_length": INPUT_MAX_LENGTH,
        }
        if field.value:
            element["initial_value"] = truncate(field.value, INPUT_MAX_LENGTH)
    return {
        "type": "input",
        "block_id": field.name,
        "optional": not field.required,
        "label": _plain(field.label, INPUT_LABEL),
        "element": element,
    }


def modal_view(form: Form) -> dict[str, Any]:
    """A modal for `views.open`; the submission's `callback_id` is the form's action."""
    return {
        "type": "modal",
        "callback_id": form.action_id,
        "private_metadata": form.value,
        "title": _plain(form.title, VIEW_TITLE),
        "submit": _plain(form.submit_label, VIEW_TITLE),
        "close": _plain(CANCEL, VIEW_TITLE),
        "blocks": [_input(field) for field in form.fields][:VIEW_BLOCKS],
    }


def _state_value(state: Mapping[str, Any]) -> str | None:
    """One element's submitted value as a string, or None for kinds we never render."""
    kind = state.get("type")
    if kind == "multi_static_select" or "selected_options" in state:
        return ",".join(o.get("value", "") for o in state.get("selected_options") or [])
    if kind == "static_select" or "selected_option" in state:
        return (state.get("selected_option") or {}).get("value") or ""
    if kind == "plain_text_input" or "value" in state:
        return state.get("value") or ""
    return None


def _values(state_values: Mapping[str, Any], kinds: set[str] | None = None) -> dict[str, str]:
    values: dict[str, str] = {}
    for block in state_values.values():
        for action_id, state in (block or {}).items():
            if kinds is not None and state.get("type") not in kinds:
                continue
            value = _state_value(state)
            if value is not None:
                values[action_name(action_id)] = value
    return values


def form_values(view: Mapping[str, Any]) -> dict[str, str]:
    """Field name → submitted string from a `view_submission` view ('' when left empty)."""
    return _values(((view.get("state") or {}).get("values")) or {})


def picker_values(state_values: Mapping[str, Any]) -> dict[str, str]:
    """Every multi-select in a `block_actions` state → its chosen values, comma-separated."""
    return _values(state_values, {"multi_static_select"})


def home_view(reply: Reply, *, handles: Mapping[int, str] | None = None) -> dict[str, Any]:
    """The App Home tab: the reply's blocks, with the larger limit views allow."""
    return {"type": "home", "blocks": render_blocks(reply, handles=handles, max_blocks=VIEW_BLOCKS)}
