"""Every Slack payload our commands produce, checked by slack_sdk's Block Kit models.

The payloads are the adapter's: a newcomer's session through the router on the demo
org (tests/conformance/corpus.py), rendered as SlackAdapter and SlackMessenger render
them, and replies made of hostile text by the property strategies. Each check is also
shown to fail on a payload broken on purpose, so a check that stopped looking would
be noticed.
"""

from __future__ import annotations

import copy
from collections import Counter
from typing import Any

import pytest
from hypothesis import example, given

from adapters.slack import render as slack
from bot.types import Actions, Button, Form, FormField, PersonCard, Reply, Text
from tests.conformance.corpus import Sample, slack_payloads
from tests.conformance.slack import message_problems, view_problems
from tests.property import strategies as s


def problems_of(kind: str, body: dict[str, Any]) -> list[str]:
    return message_problems(body) if kind == "message" else view_problems(body)


def test_every_payload_of_a_newcomers_session_is_block_kit_slack_accepts(
    samples: list[Sample],
) -> None:
    found: dict[str, list[str]] = {}
    methods: Counter[str] = Counter()
    for sample in samples:
        for method, kind, body in slack_payloads(sample):
            methods[method] += 1
            problems = problems_of(kind, body)
            if problems:
                found[f"{sample.label} → {method}"] = problems
    assert not found, found
    # The whole session was rendered, every way the adapter sends.
    assert set(methods) == {"response_url", "views.open", "views.publish", "chat.postMessage"}
    assert sum(methods.values()) >= 80, methods


def test_the_forty_experts_reply_is_cut_to_a_message_slack_accepts(samples: list[Sample]) -> None:
    (sample,) = [s for s in samples if s.label == "40 experts"]
    (answer,) = slack_payloads(sample)
    blocks = answer[2]["blocks"]
    # Cut at the limit, whole cards kept, with a line saying so: one card more would not fit.
    card = next(e for e in sample.slack.elements if isinstance(e, PersonCard))
    per_card = len(slack.render_element(card, sample.slack_handles))
    assert len(blocks) <= slack.MESSAGE_BLOCKS < len(blocks) + per_card
    assert "more" in blocks[-1]["elements"][0]["text"]
    assert message_problems(answer[2]) == []


@given(reply=s.well_formed_replies)
@example(reply=Reply.of(Actions((Button("Go", "x.go", "v"), Button("Go", "x.go", "v")))))
def test_any_reply_renders_to_block_kit_slack_accepts(reply: Reply) -> None:
    for handles in ({}, s.handles_for(reply)):
        blocks = slack.render_blocks(reply, handles=handles)
        message = {"blocks": blocks, "text": slack.fallback_text(reply)}
        if blocks or message["text"]:
            # An empty reply is never sent (Answers.answer returns first).
            problems = message_problems(message)
            assert problems == [], reply
        home = slack.home_view(reply, handles=handles)
        if home["blocks"]:
            assert view_problems(home) == [], reply
    for form in (e for e in reply.elements if isinstance(e, Form) and e.fields):
        assert view_problems(slack.modal_view(form)) == [], form


# --- each check fails on a payload broken on purpose --------------------------------------


def _message(samples: list[Sample]) -> dict[str, Any]:
    """A real answer with people, buttons and a picker: the first who-knows answer."""
    sample = next(s for s in samples if s.label.startswith("alex: whoknows refund"))
    return copy.deepcopy(slack_payloads(sample)[-1][2])


def _modal(samples: list[Sample]) -> dict[str, Any]:
    sample = next(s for s in samples if s.label.startswith("alex: huddle resolve 1"))
    return copy.deepcopy(slack_payloads(sample)[0][2])


def _actions(message: dict[str, Any]) -> dict[str, Any]:
    return next(b for b in message["blocks"] if b["type"] == "actions")


def _too_many_blocks(m: dict[str, Any]) -> None:
    m["blocks"] = (m["blocks"] * 50)[:51]


def _long_section(m: dict[str, Any]) -> None:
    m["blocks"][0]["text"]["text"] = "x" * 3_001


def _no_fallback(m: dict[str, Any]) -> None:
    m["text"] = ""


def _repeated_action_id(m: dict[str, Any]) -> None:
    actions = _actions(m)
    actions["elements"].append(copy.deepcopy(actions["elements"][-1]))


def _repeated_block_id(m: dict[str, Any]) -> None:
    m["blocks"][0]["block_id"] = m["blocks"][1]["block_id"] = "b1"


def _misspelt_field(m: dict[str, Any]) -> None:
    m["blocks"][0]["txet"] = m["blocks"][0].pop("text")


def _long_button_label(m: dict[str, Any]) -> None:
    _actions(m)["elements"][-1]["text"]["text"] = "x" * 76


def _unknown_block(m: dict[str, Any]) -> None:
    m["blocks"][0]["type"] = "sektion"


@pytest.mark.parametrize(
    "breaking",
    [
        _too_many_blocks,
        _long_section,
        _no_fallback,
        _repeated_action_id,
        _repeated_block_id,
        _misspelt_field,
        _long_button_label,
        _unknown_block,
    ],
)
def test_a_message_broken_on_purpose_is_refused(samples: list[Sample], breaking: Any) -> None:
    message = _message(samples)
    assert message_problems(message) == []
    breaking(message)
    assert message_problems(message), breaking.__name__


def _long_title(v: dict[str, Any]) -> None:
    v["title"]["text"] = "x" * 25


def _too_many_view_blocks(v: dict[str, Any]) -> None:
    v["blocks"] = [dict(b, block_id=f"b{n}") for n, b in enumerate(v["blocks"] * 101)][:101]


def _repeated_input_block_id(v: dict[str, Any]) -> None:
    v["blocks"][1]["block_id"] = v["blocks"][0]["block_id"]


def _long_input(v: dict[str, Any]) -> None:
    v["blocks"][0]["element"]["max_length"] = 3_001


@pytest.mark.parametrize(
    "breaking", [_long_title, _too_many_view_blocks, _repeated_input_block_id, _long_input]
)
def test_a_modal_broken_on_purpose_is_refused(samples: list[Sample], breaking: Any) -> None:
    view = _modal(samples)
    assert view_problems(view) == []
    breaking(view)
    assert view_problems(view), breaking.__name__


def test_a_form_without_fields_is_a_modal_slack_refuses() -> None:
    """Known and harmless today: no skill makes a form without fields."""
    view = slack.modal_view(Form("Empty", "x.submit", ()))
    assert view_problems(view)
    assert view_problems(slack.modal_view(Form("One", "x.submit", (FormField("a", "A"),)))) == []
    assert (
        message_problems({"blocks": slack.render_blocks(Reply.of(Text("hi"))), "text": "hi"}) == []
    )


def test_a_reply_of_buttons_alone_still_has_a_fallback_text() -> None:
    reply = Reply.of(Actions((Button("Start huddle thread", "huddle.start", "refunds"),)))
    message = {"blocks": slack.render_blocks(reply), "text": slack.fallback_text(reply)}
    assert message_problems(message) == []
