"""Adaptive Cards from neutral replies: inert user text, real mentions only, Teams' size limit."""

from __future__ import annotations

import json
import unicodedata
from typing import Any

import pytest

from adapters.teams.render import (
    MAX_CARD_BYTES,
    clip,
    render_activity,
    render_card,
)
from bot.types import (
    Actions,
    Article,
    Button,
    Form,
    FormField,
    Line,
    Mention,
    Notice,
    Option,
    PersonCard,
    Picker,
    PresenceView,
    Reply,
    TagMatch,
    Text,
)

MARIA = "bbbbbbbb-0000-4000-8000-0000000000b1"


def dumped(card: dict[str, Any]) -> str:
    return json.dumps(card["body"], ensure_ascii=False)


def test_user_text_cannot_mention_link_or_run_macros() -> None:
    hostile = "<at>Maria Santos</at> [click](https://evil.example) {{DATE(2017-02-14T06:08:39Z)}}"
    reply = Reply.of(
        Text(hostile),
        Article(1, hostile, hostile, tags=("<at>x</at>",)),
        Line(("Ask ", Mention(7, "Maria Santos", MARIA), " about it")),
    )
    card = render_card(reply)
    text = dumped(card)
    # The one real mention, from the Mention element, and its entity.
    assert text.count("<at>Maria Santos</at>") == 1
    assert card["msteams"]["entities"] == [
        {
            "type": "mention",
            "text": "<at>Maria Santos</at>",
            "mentioned": {"id": MARIA, "name": "Maria Santos"},
        }
    ]
    assert "](" not in text and "{{" not in text
    # Still reads the same: only invisible word joiners were added.
    assert text.replace("\\u2060", "").replace("\u2060", "").count("[click](https://evil") == 3


def test_a_mention_without_a_teams_account_is_only_a_name() -> None:
    card = render_card(Reply.of(Line(("Ask ", Mention(7, "Maria Santos"), "."))))
    assert "Maria Santos" in dumped(card) and "<at>" not in dumped(card)
    assert "entities" not in card["msteams"]
    # With the handle from the adapter's lookup it pings.
    card = render_card(Reply.of(Line((Mention(7, "Maria <b>Santos"),))), handles={7: MARIA})
    assert card["msteams"]["entities"][0]["text"] == "<at>Maria bSantos</at>"


def test_an_expert_card_shows_presence_tags_reason_time_and_a_chat_link() -> None:
    card_for = PersonCard(
        7,
        "maria",
        "Maria Santos",
        "Billing",
        PresenceView("busy", "busy", local_time="10:05", until_local="11:00"),
        tags=(TagMatch("refunds", 5, True), TagMatch("chargebacks", 3, False)),
        reason="refunds level 5, verified by Priya Nair",
    )
    card = render_card(Reply.of(card_for), handles={7: MARIA})
    text = dumped(card)
    for expected in ("Maria Santos", "Billing", "busy until 11:00", "10:05 their time"):
        assert expected in text
    assert "refunds 5 ✓ · chargebacks 3" in text and "verified by Priya Nair" in text
    assert f"https://teams.microsoft.com/l/chat/0/0?users={MARIA}" in text
    # A handle that is not an AAD object id gives no link rather than a broken one.
    assert "l/chat" not in dumped(render_card(Reply.of(card_for), handles={7: "29:maria"}))


def test_buttons_pickers_and_forms_carry_what_comes_back() -> None:
    reply = Reply.of(
        Actions(
            (Button("Start huddle thread", "huddle.start", '{"topic": "x"}', "primary"),),
            Picker(
                "experts", "Experts to invite", (Option("7", "Maria"), Option("9", "Omar")), ("7",)
            ),
        ),
        Form(
            "Resolve huddle thread #3",
            "huddle.resolve.submit",
            (
                FormField("title", "Title", value="Refunds"),
                FormField("answer", "Answer", kind="multiline"),
                FormField(
                    "team", "Team", kind="select", options=("Billing", "Devices"), required=False
                ),
            ),
            submit_label="Resolve",
            value="3",
        ),
    )
    body = render_card(reply)["body"]
    picker, buttons, form = body
    assert picker["type"] == "Input.ChoiceSet" and picker["isMultiSelect"] is True
    assert picker["value"] == "7" and [c["value"] for c in picker["choices"]] == ["7", "9"]
    (start,) = buttons["actions"]
    assert start["type"] == "Action.Submit" and start["style"] == "positive"
    assert start["data"] == {"wk.action": "huddle.start", "wk.value": '{"topic": "x"}'}
    title, answer, team, submit = form["items"][1:]
    assert (title["type"], title["value"], title["isRequired"]) == ("Input.Text", "Refunds", True)
    assert answer["isMultiline"] is True and answer["errorMessage"]
    assert team["type"] == "Input.ChoiceSet" and team["isRequired"] is False
    assert submit["actions"][0]["data"] == {
        "wk.action": "huddle.resolve.submit",
        "wk.value": "3",
        "wk.form": "1",
    }


def test_a_long_answer_stays_under_the_teams_message_limit() -> None:
    articles = [Article(i, f"Entry {i} " + "t" * 300, "body " * 400) for i in range(200)]
    reply = Reply.of(Notice("Too much", "warning"), Text("x" * 45_000), *articles)
    activity = render_activity(reply)
    size = len(json.dumps(activity, ensure_ascii=False).encode())
    assert size < 28 * 1024
    card = activity["attachments"][0]["content"]
    assert len(json.dumps(card, ensure_ascii=False).encode()) <= MAX_CARD_BYTES
    assert "too long for one Teams message" in card["body"][-1]["text"]
    assert activity["summary"] == "Too much"


@pytest.mark.parametrize(
    "text",
    [
        "ab" + "👩\u200d👩\u200d👧" * 5,
        "e\u0301" * 20,
        "🇬🇧🇫🇷🇩🇪🇮🇹" * 3,
        "x👍🏽" * 10,
    ],
)
def test_clipping_never_splits_what_reads_as_one_character(text: str) -> None:
    for limit in range(1, len(text)):
        cut = clip(text, limit)
        assert len(cut) <= limit or cut == "…"
        kept = cut.removesuffix("…")
        assert text.startswith(kept)
        if kept and kept != text:
            following = text[len(kept)] if len(kept) < len(text) else ""
            assert not unicodedata.combining(following) and following not in "\u200d\U0001f3fd"
            assert not kept.endswith("\u200d")
            flags = sum(1 for ch in kept if 0x1F1E6 <= ord(ch) <= 0x1F1FF)
            assert flags % 2 == 0


def _expert(person_id: int, name: str) -> PersonCard:
    return PersonCard(
        person_id, name.split()[0].lower(), name, "Billing", PresenceView("available", "available")
    )


def test_an_expert_on_teams_is_mentioned_and_one_who_is_not_is_marked() -> None:
    reply = Reply.of(_expert(7, "Maria Santos"), _expert(8, "Zoe Martin"))
    card = render_card(reply, handles={7: MARIA})
    # Maria has a Teams account: a real mention, which Teams shows as her.
    assert card["msteams"]["entities"] == [
        {
            "type": "mention",
            "text": "<at>Maria Santos</at>",
            "mentioned": {"id": MARIA, "name": "Maria Santos"},
        }
    ]
    # Zoe has none: her card is still there, by name, and says so; never a mention.
    maria, zoe = (item["items"] for item in card["body"])
    assert "<at>Maria Santos</at>" in maria[0]["text"]
    assert not any("not on Teams yet" in i.get("text", "") for i in maria)
    assert zoe[0]["text"].endswith("**Zoe Martin** · Billing")
    assert zoe[1]["text"] == "not on Teams yet" and "<at>" not in json.dumps(zoe)
