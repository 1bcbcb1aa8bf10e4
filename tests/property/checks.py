"""What every rendered reply must satisfy, on each platform, whatever its text.

Slack's limits are Block Kit's (block, text object, element and view references);
lengths are counted in UTF-16 code units, never fewer than code points, so they hold
whichever way Slack counts. Teams has refused messages past about 28 KB; Microsoft now
documents 100 KB counted as UTF-16 (at most 2 bytes per UTF-8 byte): the serialised
activity stays under 28 KB of UTF-8, so under 56 KB as UTF-16.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from adapters.console.render import Buttons, render
from adapters.slack import render as slack
from adapters.teams import render as teams
from bot.text import well_formed
from bot.types import Form, Line, Mention, Reply
from tests.property.graphemes import has_lone_surrogate, utf16_units

# --- Slack: Block Kit's limits ------------------------------------------------------------

MESSAGE_BLOCKS = 50
VIEW_BLOCKS = 100
TEXT_OBJECT = 3_000
SECTION_TEXT = 3_000
CONTEXT_ELEMENTS = 10
ACTIONS_ELEMENTS = 25
BUTTON_TEXT = 75
BUTTON_VALUE = 2_000
URL = 3_000
ID = 255  # action_id, block_id, callback_id
OPTION_TEXT = 75
OPTION_VALUE = 150
OPTIONS = 100
PLACEHOLDER = 150
INPUT_LABEL = 2_000
VIEW_TITLE = 24
PRIVATE_METADATA = 3_000
FALLBACK_TEXT = 40_000
# A token Slack acts on: <@U…>, <#C…>, <!here>, <!subteam^…>, <https://…|…>.
SLACK_TOKEN = re.compile(r"<[^<>]*>?")
SLACK_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")


def slack_user_ids(reply: Reply, handles: dict[int, str]) -> set[str]:
    """The Slack ids the renderer may mention: people we passed, as real Slack ids."""
    ids = set(handles.values())
    for element in reply.elements:
        if isinstance(element, Line):
            ids |= {p.handle for p in element.parts if isinstance(p, Mention) and p.handle}
    return {i for i in ids if SLACK_USER_ID.match(i)}


def assert_inert_mrkdwn(text: str, allowed: set[str]) -> None:
    """The only Slack token in mrkdwn is a mention of someone we passed; entities are whole."""
    for token in SLACK_TOKEN.findall(text):
        user = re.fullmatch(r"<@([UW][A-Z0-9]+)>", token)
        assert user is not None and user.group(1) in allowed, (token, text[:200])
    assert re.search(r"&(?!amp;|lt;|gt;)", text) is None, text[-40:]


def assert_plain(node: dict[str, Any], limit: int) -> None:
    assert node["type"] == "plain_text"
    assert 0 < utf16_units(node["text"]) <= limit, node["text"][:80]


def assert_button(element: dict[str, Any]) -> None:
    assert_plain(element["text"], BUTTON_TEXT)
    assert element["action_id"] and utf16_units(element["action_id"]) <= ID
    assert utf16_units(element.get("value", "")) <= BUTTON_VALUE
    assert utf16_units(element.get("url", "")) <= URL
    assert element.get("style") in {None, "primary", "danger"}


def assert_options(options: list[dict[str, Any]]) -> None:
    assert 0 < len(options) <= OPTIONS
    for option in options:
        assert_plain(option["text"], OPTION_TEXT)
        assert 0 < utf16_units(option["value"]) <= OPTION_VALUE


def assert_blocks(blocks: list[dict[str, Any]], max_blocks: int, allowed: set[str]) -> None:
    assert len(blocks) <= max_blocks
    for block in blocks:
        assert utf16_units(block.get("block_id", "")) <= ID
        kind = block["type"]
        if kind == "section":
            text = block["text"]
            assert text["type"] == "mrkdwn"
            assert 0 < utf16_units(text["text"]) <= SECTION_TEXT
            assert_inert_mrkdwn(text["text"], allowed)
            if "accessory" in block:
                assert_button(block["accessory"])
        elif kind == "context":
            assert 0 < len(block["elements"]) <= CONTEXT_ELEMENTS
            for element in block["elements"]:
                assert element["type"] == "mrkdwn"
                assert 0 < utf16_units(element["text"]) <= TEXT_OBJECT
                assert_inert_mrkdwn(element["text"], allowed)
        elif kind == "actions":
            assert 0 < len(block["elements"]) <= ACTIONS_ELEMENTS
            ids = [e["action_id"] for e in block["elements"]]
            assert len(ids) == len(set(ids)), ids
            for element in block["elements"]:
                if element["type"] == "button":
                    assert_button(element)
                    continue
                assert element["type"] == "multi_static_select"
                assert utf16_units(element["action_id"]) <= ID
                assert_plain(element["placeholder"], PLACEHOLDER)
                assert_options(element["options"])
                for chosen in element.get("initial_options", []):
                    assert chosen in element["options"]
        else:
            pytest.fail(f"unexpected block type {kind}")


def assert_modal(view: dict[str, Any]) -> None:
    assert view["type"] == "modal"
    for key in ("title", "submit", "close"):
        assert_plain(view[key], VIEW_TITLE)
    assert utf16_units(view["callback_id"]) <= ID
    assert utf16_units(view["private_metadata"]) <= PRIVATE_METADATA
    assert len(view["blocks"]) <= VIEW_BLOCKS
    block_ids = [b["block_id"] for b in view["blocks"]]
    assert len(block_ids) == len(set(block_ids)), block_ids
    for block in view["blocks"]:
        assert block["type"] == "input"
        assert 0 < utf16_units(block["block_id"]) <= ID
        assert_plain(block["label"], INPUT_LABEL)
        element = block["element"]
        assert 0 < utf16_units(element["action_id"]) <= ID
        if element["type"] == "static_select":
            assert_options(element["options"])
            if "initial_option" in element:
                assert element["initial_option"] in element["options"]
        else:
            assert element["type"] == "plain_text_input"
            assert utf16_units(element.get("initial_value", "")) <= element["max_length"] <= 3_000


# --- Teams: Adaptive Cards --------------------------------------------------------------

TEAMS_MESSAGE_BYTES = 28 * 1024
AT = re.compile(r"<at>(.*?)</at>", re.DOTALL)


def teams_ids(reply: Reply, handles: dict[int, str]) -> set[str]:
    ids = set(handles.values())
    for element in reply.elements:
        if isinstance(element, Line):
            ids |= {p.handle for p in element.parts if isinstance(p, Mention) and p.handle}
    return ids


def text_blocks(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["text"]] if node.get("type") == "TextBlock" else []
        return own + [t for v in node.values() for t in text_blocks(v)]
    if isinstance(node, list):
        return [t for item in node for t in text_blocks(item)]
    return []


def assert_teams_activity(activity: dict[str, Any], allowed: set[str]) -> None:
    wire = json.dumps(activity, ensure_ascii=False)
    assert not has_lone_surrogate(wire)
    assert len(wire.encode("utf-8")) <= TEAMS_MESSAGE_BYTES
    (attachment,) = activity["attachments"]
    card = attachment["content"]
    entities = card["msteams"].get("entities", [])
    texts = {e["text"] for e in entities}
    for entity in entities:
        # Ids as sent: a card's strings are well-formed, even a malformed id's.
        assert entity["type"] == "mention"
        assert entity["mentioned"]["id"] in {well_formed(i) for i in allowed}
    for text in text_blocks(card["body"]):
        for name in AT.findall(text):
            assert f"<at>{name}</at>" in texts, text[:200]
        assert "](" not in text and "{{" not in text, text[:200]
    assert len(activity.get("summary", "")) <= teams.SUMMARY_CHARS


def assert_renders_everywhere(reply: Reply, handles: dict[int, str]) -> None:
    """A reply as each platform would send it: within every limit, pinging nobody unasked."""
    allowed = slack_user_ids(reply, handles)
    assert_blocks(slack.render_blocks(reply, handles=handles), MESSAGE_BLOCKS, allowed)
    assert_blocks(slack.home_view(reply, handles=handles)["blocks"], VIEW_BLOCKS, allowed)
    assert_inert_mrkdwn(slack.fallback_text(reply), slack_user_ids(reply, {}))
    for form in (e for e in reply.elements if isinstance(e, Form)):
        assert_modal(slack.modal_view(form))
    assert_teams_activity(teams.render_activity(reply, handles=handles), teams_ids(reply, handles))
    render(reply, Buttons()).encode("utf-8")
