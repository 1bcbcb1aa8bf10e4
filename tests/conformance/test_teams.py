"""Every Adaptive Card our commands produce, checked by Microsoft's `adaptivecards` library.

Each card is parsed (no parse event), validated (no validation event) and rendered
into a jsdom document by adaptivecards 3.0.6 in Node (tests/conformance/validate.cjs),
and its activity stays under the 28 KB Teams has refused messages past. The cards are
the adapter's, for a newcomer's session through the router (tests/conformance/corpus.py)
and for replies made of hostile text by the property strategies.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from collections import Counter
from typing import Any

import pytest
from hypothesis import example, given, settings

from adapters.teams import render as teams
from bot.types import Actions, Button, Form, FormField, Line, Mention, Reply, Text
from tests.conformance.corpus import Sample, teams_activity
from tests.conformance.microsoft import Validators
from tests.property import strategies as s

TEAMS_MESSAGE_BYTES = 28 * 1024
MAX_ACTIONS = 5  # adaptivecards' default host config, what its validation counts against


def activity_bytes(activity: dict[str, Any]) -> int:
    return len(json.dumps(activity, ensure_ascii=False).encode("utf-8"))


def card_of(activity: dict[str, Any]) -> dict[str, Any]:
    (attachment,) = activity["attachments"]
    assert attachment["contentType"] == teams.CARD_CONTENT_TYPE
    return attachment["content"]


def test_every_card_of_a_newcomers_session_passes_adaptivecards(
    samples: list[Sample], microsoft: Validators
) -> None:
    activities = [teams_activity(sample) for sample in samples]
    verdicts = microsoft.check_all("card", [card_of(a) for a in activities])
    found = {
        sample.label: problems
        for sample, problems in zip(samples, verdicts, strict=True)
        if problems
    }
    assert not found, found
    too_big = {
        sample.label: activity_bytes(a)
        for sample, a in zip(samples, activities, strict=True)
        if activity_bytes(a) > TEAMS_MESSAGE_BYTES
    }
    assert not too_big, too_big
    kinds = Counter(sample.kind for sample in samples)
    assert kinds["answer"] >= 50 and kinds["outbox"] >= 9, kinds


def test_the_forty_experts_card_is_cut_under_28_kb(samples: list[Sample]) -> None:
    (sample,) = [s for s in samples if s.label == "40 experts"]
    activity = teams_activity(sample)
    assert activity_bytes(activity) <= TEAMS_MESSAGE_BYTES
    last = card_of(activity)["body"][-1]
    assert last["type"] == "TextBlock" and "more" in last["text"]  # cut, and says so


@given(reply=s.well_formed_replies)
@example(reply=Reply.of(Text("<at>Maria</at>"), Line((Mention(1, "Maria", handle="29:m"),))))
@example(reply=Reply.of(Text("\ud83d"), Line((Mention(1, "\ude00", handle="29:m"),))))
@settings(max_examples=60)
def test_any_reply_renders_to_a_card_adaptivecards_accepts(
    reply: Reply, microsoft: Validators
) -> None:
    activities = [teams.render_activity(reply, handles=h) for h in ({}, s.handles_for(reply))]
    for problems in microsoft.check_all("card", [card_of(a) for a in activities]):
        assert problems == [], reply
    for activity in activities:
        assert activity_bytes(activity) <= TEAMS_MESSAGE_BYTES


# --- cards adaptivecards once refused: too many buttons, repeated ids, empty choices ----------


def test_more_than_five_buttons_make_a_valid_card(microsoft: Validators) -> None:
    six = tuple(Button(f"Entry {n}", "kb.helpful", str(n)) for n in range(6))
    assert microsoft.card_problems(teams.render_card(Reply.of(Actions(six)))) == []


def test_two_inputs_of_the_same_name_make_a_valid_card(microsoft: Validators) -> None:
    form = Form("Edit", "kb.edit.submit", (FormField("title", "Title"),), "Save", "1")
    reply = Reply.of(form, dataclasses.replace(form, value="2"))
    assert microsoft.card_problems(teams.render_card(reply)) == []


def test_a_select_without_choices_makes_a_valid_card(microsoft: Validators) -> None:
    field = FormField("team", "Team", kind="select", options=())
    reply = Reply.of(Form("Pick a team", "team.pick", (field,), "Save"))
    assert microsoft.card_problems(teams.render_card(reply)) == []


# --- the validator refuses a card broken on purpose -----------------------------------------


def _card(samples: list[Sample]) -> dict[str, Any]:
    """A real answer with experts, buttons and a choice set: the first who-knows answer."""
    sample = next(s for s in samples if s.label.startswith("alex: whoknows refund"))
    return copy.deepcopy(card_of(teams_activity(sample)))


def _walk(node: Any) -> list[dict[str, Any]]:
    if isinstance(node, dict):
        return [node, *(n for v in node.values() for n in _walk(v))]
    if isinstance(node, list):
        return [n for item in node for n in _walk(item)]
    return []


def _first(card: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(n for n in _walk(card["body"]) if n.get("type") == kind)


def _unknown_element(c: dict[str, Any]) -> None:
    c["body"].append({"type": "TextBlok", "text": "typo"})


def _bad_colour(c: dict[str, Any]) -> None:
    _first(c, "TextBlock")["color"] = "Purple"


def _choice_set_without_id(c: dict[str, Any]) -> None:
    del _first(c, "Input.ChoiceSet")["id"]


def _repeated_input_id(c: dict[str, Any]) -> None:
    choices = _first(c, "Input.ChoiceSet")
    c["body"].append(dict(copy.deepcopy(choices)))


def _unknown_action(c: dict[str, Any]) -> None:
    _first(c, "ActionSet")["actions"][0]["type"] = "Action.Sumbit"


def _newer_version(c: dict[str, Any]) -> None:
    c["version"] = "9.9"


@pytest.mark.parametrize(
    "breaking",
    [
        _unknown_element,
        _bad_colour,
        _choice_set_without_id,
        _repeated_input_id,
        _unknown_action,
        _newer_version,
    ],
)
def test_a_card_broken_on_purpose_is_refused(
    samples: list[Sample], microsoft: Validators, breaking: Any
) -> None:
    card = _card(samples)
    assert microsoft.card_problems(card) == []
    breaking(card)
    assert microsoft.card_problems(card), breaking.__name__


def test_a_card_too_large_for_teams_is_noticed(samples: list[Sample]) -> None:
    sample = next(s for s in samples if s.label.startswith("alex: whoknows refund"))
    activity = teams_activity(sample)
    assert activity_bytes(activity) <= TEAMS_MESSAGE_BYTES
    card_of(activity)["body"].append({"type": "TextBlock", "text": "x" * TEAMS_MESSAGE_BYTES})
    assert activity_bytes(activity) > TEAMS_MESSAGE_BYTES
