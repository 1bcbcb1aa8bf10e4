"""The Slack renderer: golden Block Kit, escaping, Slack's limits, forms and their values."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from adapters.slack.render import (
    LINK_ACTION,
    action_name,
    escape,
    fallback_text,
    form_values,
    home_view,
    modal_view,
    picker_values,
    render_blocks,
    truncate,
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

GOLDEN = Path(__file__).parent / "golden"
# Read at import: the suite's autouse fixture clears WHOKNOWS_* before each test.
UPDATE_GOLDEN = os.environ.get("WHOKNOWS_UPDATE_GOLDEN") == "1"
HOSTILE = "<!channel> & <@U1>"
HOSTILE_ESCAPED = "&lt;!channel&gt; &amp; &lt;@U1&gt;"
PINGS = ("<!channel>", "<!here>", "<!everyone>", "<@U1>", "<!subteam^")


def assert_golden(name: str, actual: Any) -> None:
    """Compare with golden/<name>.json; WHOKNOWS_UPDATE_GOLDEN=1 rewrites it instead."""
    path = GOLDEN / f"{name}.json"
    if UPDATE_GOLDEN:
        path.parent.mkdir(exist_ok=True)
        path.write_text(json.dumps(actual, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    assert path.exists(), f"{path} missing: run with WHOKNOWS_UPDATE_GOLDEN=1 and review it"
    assert json.loads(path.read_text(encoding="utf-8")) == actual


def units(text: str) -> int:
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def mrkdwn_texts(node: Any) -> list[str]:
    """The text of every mrkdwn object in blocks (plain_text is shown verbatim, unescaped)."""
    if isinstance(node, dict):
        own = [node["text"]] if node.get("type") == "mrkdwn" else []
        return own + [t for v in node.values() for t in mrkdwn_texts(v)]
    if isinstance(node, list):
        return [t for item in node for t in mrkdwn_texts(item)]
    return []


def assert_within_limits(blocks: list[dict[str, Any]], max_blocks: int = 50) -> None:
    """Every Block Kit limit this renderer can reach, checked on the output."""
    assert 0 < len(blocks) <= max_blocks
    for block in blocks:
        kind = block["type"]
        if kind == "section":
            assert 0 < units(block["text"]["text"]) <= 3000
            if "accessory" in block:
                assert units(block["accessory"]["text"]["text"]) <= 75
        elif kind == "context":
            assert 0 < len(block["elements"]) <= 10
            for element in block["elements"]:
                assert 0 < units(element["text"]) <= 2000
        elif kind == "actions":
            assert 0 < len(block["elements"]) <= 25
            ids = [e["action_id"] for e in block["elements"]]
            assert len(ids) == len(set(ids)), ids
            for element in block["elements"]:
                assert len(element["action_id"]) <= 255
                if element["type"] == "button":
                    assert 0 < units(element["text"]["text"]) <= 75
                    assert len(element.get("value", "")) <= 2000
                else:
                    assert element["type"] == "multi_static_select"
                    assert units(element["placeholder"]["text"]) <= 150
                    assert 0 < len(element["options"]) <= 100
                    for option in element["options"]:
                        assert 0 < units(option["text"]["text"]) <= 75
                        assert 0 < len(option["value"]) <= 150
        else:
            pytest.fail(f"unexpected block type {kind}")
    for text in mrkdwn_texts(blocks):
        # Escaped user text leaves no half entity behind a cut.
        assert re.search(r"&(?!amp;|lt;|gt;)", text) is None, text[-20:]


def presence(status: str = "available", **kwargs: Any) -> PresenceView:
    return PresenceView(status=status, label=kwargs.pop("label", status.title()), **kwargs)


MARIA = PersonCard(
    person_id=7,
    key="maria",
    name="Maria Lopez",
    team="Billing",
    presence=presence("available", label="Available", local_time="10:05"),
    tags=(TagMatch("refunds", 4, True), TagMatch("top-ups", 3, False)),
    reason="Answered 6 refund questions this month",
    score=0.91,
)
OMAR = PersonCard(
    person_id=9,
    key="omar",
    name="Omar Haddad",
    team=None,
    presence=presence("busy", label="In a call", until_local="11:30", local_time="12:05"),
    tags=(TagMatch("refunds", 3, False),),
    reason="",
)


def who_knows_reply() -> Reply:
    return Reply.of(
        Notice("2 entries and 2 people for “refund for a prepaid top-up”", "success"),
        Article(
            entry_id=12,
            title="Refunding a prepaid top-up",
            snippet="Reverse the top-up with code TU-07 & tell the customer <24h>.",
            tags=("refunds", "top-ups"),
            helpful=4,
        ),
        Article(entry_id=31, title="Wrong-number top-ups", snippet="Raise a reversal."),
        MARIA,
        OMAR,
        Actions(
            buttons=(
                Button("Start huddle", "huddle.start", "refund for a prepaid top-up", "primary"),
                Button("Helpful", "kb.helpful", "12"),
                Button("Helpful", "kb.helpful", "31"),
                Button("Not now", "huddle.dismiss", style="danger"),
            ),
            picker=Picker(
                name="experts",
                label="Who to invite",
                options=(Option("7", "Maria Lopez"), Option("9", "Omar Haddad")),
                selected=("7",),
            ),
        ),
    )


# --- golden ----------------------------------------------------------------------------


def test_a_who_knows_reply_matches_its_golden_blocks() -> None:
    blocks = render_blocks(who_knows_reply(), handles={7: "UMARIA"})
    assert_golden("who_knows", blocks)
    assert_within_limits(blocks)


def test_the_golden_reply_has_the_parts_the_adapter_relies_on() -> None:
    blocks = render_blocks(who_knows_reply(), handles={7: "UMARIA"})
    maria = blocks[4]
    assert "<@UMARIA>" in maria["text"]["text"]
    assert maria["accessory"] == {
        "type": "button",
        "text": {"type": "plain_text", "text": "Message"},
        "action_id": LINK_ACTION,
        "url": "https://slack.com/app_redirect?channel=UMARIA",
    }
    assert "refunds 4 ✓, top-ups 3" in maria["text"]["text"]
    omar = blocks[6]
    assert "accessory" not in omar and "<@" not in omar["text"]["text"]
    assert "In a call until 11:30 · 12:05 their time" in omar["text"]["text"]
    (actions,) = [b for b in blocks if b["type"] == "actions"]
    picker, *buttons = actions["elements"]
    assert picker["action_id"] == "experts"
    assert [o["value"] for o in picker["initial_options"]] == ["7"]
    assert [b["action_id"] for b in buttons] == [
        "huddle.start",
        "kb.helpful",
        "kb.helpful~2",
        "huddle.dismiss",
    ]
    assert [b.get("style") for b in buttons] == ["primary", None, None, "danger"]
    assert "value" not in buttons[3]  # an empty value is left out, not sent as ""


# --- escaping --------------------------------------------------------------------------


def test_escape_replaces_only_slacks_three_control_characters() -> None:
    assert escape(HOSTILE) == HOSTILE_ESCAPED
    assert escape("*bold* _it_ `code` 'q' \"q\" é") == "*bold* _it_ `code` 'q' \"q\" é"
    assert escape("&amp;") == "&amp;amp;"  # text that looks escaped is still user text


@pytest.mark.parametrize(
    "element",
    [
        Text(HOSTILE),
        Notice(HOSTILE, "error"),
        Line(("Asked by ", HOSTILE)),
        Line((Mention(3, HOSTILE),)),
        Article(1, HOSTILE, HOSTILE, tags=(HOSTILE,)),
        PersonCard(
            3,
            "x",
            HOSTILE,
            HOSTILE,
            presence(label=HOSTILE, until_local=HOSTILE, local_time=HOSTILE),
            tags=(TagMatch(HOSTILE, 2, True),),
            reason=HOSTILE,
        ),
        Form(HOSTILE, "kb.edit", ()),
    ],
    ids=["text", "notice", "line", "mention", "article", "card", "form"],
)
def test_user_text_never_pings_anyone(element: Any) -> None:
    reply = Reply.of(element)
    rendered = json.dumps(render_blocks(reply), ensure_ascii=False) + fallback_text(reply)
    assert HOSTILE_ESCAPED in rendered
    for ping in PINGS:
        assert ping not in rendered


def test_a_mention_pings_only_with_a_real_slack_id() -> None:
    line = Line(
        (
            Mention(1, "Maria", handle="UMARIA"),
            " and ",
            Mention(2, "Omar"),
            " and ",
            Mention(3, "Kim"),
            " and ",
            Mention(4, "Eve", handle="U1><!channel"),
        )
    )
    (block,) = render_blocks(Reply.of(line), handles={3: "WKIM"})
    assert block["text"]["text"] == "<@UMARIA> and Omar and <@WKIM> and Eve"


def test_a_card_without_a_slack_id_has_no_mention_and_no_link() -> None:
    (section, context) = render_blocks(Reply.of(MARIA))
    assert "<@" not in section["text"]["text"] and "accessory" not in section
    assert context["elements"][0]["text"] == "Answered 6 refund questions this month"


def test_an_expert_not_on_slack_yet_is_shown_marked_and_still_offered_for_a_huddle() -> None:
    blocks = render_blocks(who_knows_reply(), handles={7: "UMARIA"})
    cards = [b["text"]["text"] for b in blocks if b["type"] == "section" and "*" in str(b)]
    omar = next(text for text in cards if "Omar Haddad" in text)
    maria = next(text for text in cards if "Maria Lopez" in text)
    assert omar.splitlines()[0] == "🟠 *Omar Haddad* · _not on Slack yet_"
    assert "<@" not in omar
    assert "<@UMARIA>" in maria and "not on Slack" not in maria
    (picker,) = [
        e for b in blocks if b["type"] == "actions" for e in b["elements"] if "options" in e
    ]
    assert [o["text"]["text"] for o in picker["options"]] == ["Maria Lopez", "Omar Haddad"]
    # Rendered where nobody looked the accounts up (a delivery), nobody is marked.
    assert "not on Slack" not in json.dumps(render_blocks(who_knows_reply()))


# --- limits ----------------------------------------------------------------------------


def test_a_45000_character_answer_stays_within_every_limit() -> None:
    answer = ("Reverse the top-up & refund 👩‍👩‍👧 then call back <soon>. " * 1000)[:45_000]
    assert len(answer) == 45_000
    long_name = "Maria " * 500
    reply = Reply.of(
        Text(answer),
        Notice(answer, "warning"),
        Line((answer, Mention(1, long_name, handle="UMARIA"), answer)),
        Article(5, answer, answer, tags=tuple(answer[i : i + 50] for i in range(0, 2000, 50))),
        PersonCard(1, "m", long_name, long_name, presence(label=answer), reason=answer),
        Actions(
            (Button(answer, "kb.helpful", "5"), Button(answer, "huddle.start", "v" * 2000)),
            picker=Picker("experts", answer, tuple(Option(str(i), answer) for i in range(150))),
        ),
        Form(answer, "kb.edit", ()),
    )
    blocks = render_blocks(reply, handles={1: "UMARIA"})
    assert_within_limits(blocks)
    (actions,) = [b for b in blocks if b["type"] == "actions"]
    assert len(actions["elements"][0]["options"]) == 100
    assert actions["elements"][2]["value"] == "v" * 2000  # values are never cut
    text = fallback_text(reply)
    assert 0 < units(text) <= 3000 and text.endswith("…")
    assert_within_limits(home_view(reply)["blocks"], max_blocks=100)


def test_values_too_long_for_slack_are_left_out_rather_than_cut() -> None:
    actions = Actions(
        (Button("Too long", "x.big", "v" * 2001), Button("Fine", "x.ok", "1")),
        picker=Picker("p", "Pick", (Option("9" * 151, "Too long"), Option("1", "One"))),
    )
    (block,) = render_blocks(Reply.of(actions))
    picker, button = block["elements"]
    assert [o["value"] for o in picker["options"]] == ["1"]
    assert button["action_id"] == "x.ok"


def test_sixty_elements_become_fifty_blocks_ending_with_how_many_more() -> None:
    reply = Reply.of(*(Text(f"answer {i}") for i in range(60)))
    blocks = render_blocks(reply)
    assert len(blocks) == 50
    assert [b["text"]["text"] for b in blocks[:49]] == [f"answer {i}" for i in range(49)]
    assert blocks[49] == {
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": "…and 11 more"}],
    }
    assert_within_limits(blocks)


def test_elements_are_never_cut_in_half_at_the_block_limit() -> None:
    # A card with a reason is two blocks: 24 whole cards fit before the note.
    blocks = render_blocks(Reply.of(*(MARIA for _ in range(30))))
    assert len(blocks) == 49
    assert blocks[-1]["elements"][0]["text"] == "…and 6 more"
    assert blocks[-2]["type"] == "context" and blocks[-3]["type"] == "section"


def test_the_home_tab_allows_a_hundred_blocks() -> None:
    reply = Reply.of(*(Text(f"skill {i}") for i in range(120)))
    view = home_view(reply)
    assert view["type"] == "home" and len(view["blocks"]) == 100
    assert view["blocks"][-1]["elements"][0]["text"] == "…and 21 more"
    small = Reply.of(Notice("Your skills"), Text("refunds: level 5"))
    assert home_view(small)["blocks"] == render_blocks(small)


def test_a_cut_never_leaves_half_an_entity_or_a_broken_mention() -> None:
    for count in range(595, 605):
        (block,) = render_blocks(Reply.of(Text("a" * count + "&" * 1000)))
        text = block["text"]["text"]
        assert text.endswith("&amp;…") or text.endswith("a…")
        assert_within_limits([block])
    line = Line(("x" * 2995, Mention(1, "Maria", handle="UMARIA"), " thanks"))
    (block,) = render_blocks(Reply.of(line))
    assert block["text"]["text"] == "x" * 2995 + "…"


# --- truncation on grapheme boundaries ---------------------------------------------------

CLUSTERS = {
    "family": "👩\u200d👩\u200d👧",
    "flag": "🇬🇧",
    "combining": "e\u0301",
    "skin tone": "👍🏽",
    "emoji presentation": "❤\ufe0f",
    "subdivision flag": "🏴\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f",
    "hangul jamo": "\u1100\u1161\u11a8",
    "crlf": "\r\n",
    "surrogates": "\ud83d\ude00",
    "stacked marks": "a\u0308\u0323\u0301",
}


@pytest.mark.parametrize("cluster", CLUSTERS.values(), ids=CLUSTERS.keys())
@pytest.mark.parametrize("prefix", ["", "ab", "x "])
def test_truncation_never_splits_a_grapheme(cluster: str, prefix: str) -> None:
    text = prefix + cluster * 6
    for limit in range(1, units(text) + 1):
        cut = truncate(text, limit)
        assert len(cut) <= limit and units(cut) <= limit
        if cut == text:
            continue
        assert cut.endswith("…")
        body = cut[:-1]
        if len(body) <= len(prefix):
            assert prefix.startswith(body)
        else:  # whole clusters after the prefix, never a piece of one
            assert body.startswith(prefix)
            assert body[len(prefix) :].replace(cluster, "") == "", (limit, cut)


def test_truncation_keeps_short_text_and_cuts_long_text_to_the_limit() -> None:
    assert truncate("refunds", 7) == "refunds"
    assert truncate("refunds", 6) == "refun…"
    assert truncate("refunds and top-ups", 12) == "refunds and…"  # no space before the mark
    assert truncate("abc", 0) == ""
    assert truncate("🇬🇧🇫🇷", 5) == "🇬🇧…"
    assert truncate("🇬🇧🇫🇷", 8) == "🇬🇧🇫🇷"
    # A flag run is paired from its start: the third indicator never joins the second.
    assert truncate("🇬🇧🇫🇷🇩🇪", 9) == "🇬🇧🇫🇷…"


# --- actions ---------------------------------------------------------------------------


def test_repeated_action_ids_get_a_suffix_the_adapter_strips() -> None:
    actions = Actions(
        (
            Button("Helpful #1", "kb.helpful", "1"),
            Button("Helpful #2", "kb.helpful", "2"),
            Button("Edit", "kb.edit", "1"),
            Button("Helpful #3", "kb.helpful", "3"),
        ),
        picker=Picker("kb.edit", "Which", (Option("1", "One"),)),
    )
    (block,) = render_blocks(Reply.of(actions, actions))[:1]
    ids = [e["action_id"] for e in block["elements"]]
    assert ids == ["kb.edit", "kb.helpful", "kb.helpful~2", "kb.edit~2", "kb.helpful~3"]
    assert [action_name(i) for i in ids] == [
        "kb.edit",
        "kb.helpful",
        "kb.helpful",
        "kb.edit",
        "kb.helpful",
    ]
    assert action_name("kb.helpful") == "kb.helpful"
    assert action_name("a~b") == "a~b"
    # Each actions block starts afresh: uniqueness is per block.
    second = render_blocks(Reply.of(actions, actions))[1]
    assert [e["action_id"] for e in second["elements"]] == ids


def test_more_than_25_controls_spill_into_a_second_actions_block() -> None:
    buttons = tuple(Button(f"#{i}", "kb.helpful", str(i)) for i in range(30))
    blocks = render_blocks(Reply.of(Actions(buttons)))
    assert [len(b["elements"]) for b in blocks] == [25, 5]
    assert blocks[1]["elements"][-1]["action_id"] == "kb.helpful~30"
    assert {action_name(e["action_id"]) for b in blocks for e in b["elements"]} == {"kb.helpful"}


def test_empty_parts_render_no_blocks_slack_would_reject() -> None:
    reply = Reply.of(Text("  "), Actions(()), Actions((), Picker("p", "Pick", ())))
    assert render_blocks(reply) == []
    assert fallback_text(reply) == ""


def test_an_unknown_element_is_a_programming_error() -> None:
    with pytest.raises(TypeError, match="no Slack rendering for str"):
        render_blocks(Reply(("not an element",)))  # type: ignore[arg-type]


# --- fallback text ---------------------------------------------------------------------


def test_fallback_text_is_the_first_words_escaped() -> None:
    reply = Reply.of(MARIA, Actions((Button("Go", "go"),)), Notice(HOSTILE), Text("later"))
    assert fallback_text(reply) == HOSTILE_ESCAPED
    line = Reply.of(Line(("Huddle with ", Mention(1, "Maria", handle="UMARIA"))))
    assert fallback_text(line) == "Huddle with <@UMARIA>"
    assert fallback_text(Reply.of(MARIA, OMAR)) == "Maria Lopez"
    assert fallback_text(Reply.of(Article(3, "A & B", "s"))) == "#3 A &amp; B"


# --- forms -----------------------------------------------------------------------------

RESOLVE = Form(
    title="Resolve huddle #42 and save the answer",
    action_id="huddle.resolve.submit",
    fields=(
        FormField("title", "Title", value="Wrong-number top-ups"),
        FormField("answer", "What did you conclude?", kind="multiline"),
        FormField("visibility", "Who can see it", kind="select", options=("team", "everyone")),
        FormField("tags", "Tags", required=False, value="refunds"),
        FormField("team", "Team", kind="select", options=("billing", "care"), value="care"),
    ),
    submit_label="Save",
    value="42",
)


def submission(view: dict[str, Any], answers: dict[str, str | None]) -> dict[str, Any]:
    """A view_submission `view` in Slack's shape: state.values[block_id][action_id]."""
    values: dict[str, Any] = {}
    for block in view["blocks"]:
        element = block["element"]
        answer = answers.get(element["action_id"])
        if element["type"] == "static_select":
            chosen = next((o for o in element["options"] if o["value"] == answer), None)
            state = {"type": "static_select", "selected_option": chosen}
        else:
            state = {"type": "plain_text_input", "value": answer}
        values[block["block_id"]] = {element["action_id"]: state}
    return {
        "id": "V123",
        "type": "modal",
        "callback_id": view["callback_id"],
        "private_metadata": view["private_metadata"],
        "blocks": view["blocks"],
        "state": {"values": values},
    }


def test_a_form_becomes_a_modal() -> None:
    view = modal_view(RESOLVE)
    assert view["type"] == "modal"
    assert view["callback_id"] == "huddle.resolve.submit" and view["private_metadata"] == "42"
    assert view["title"] == {"type": "plain_text", "text": "Resolve huddle #42 and…"}
    assert len(view["title"]["text"]) <= 24
    assert view["submit"]["text"] == "Save" and view["close"]["text"] == "Cancel"
    title, answer, visibility, tags, team = view["blocks"]
    assert [b["block_id"] for b in view["blocks"]] == [f.name for f in RESOLVE.fields]
    assert all(b["type"] == "input" and b["element"]["action_id"] == b["block_id"] for b in [title])
    assert title["element"] == {
        "type": "plain_text_input",
        "action_id": "title",
        "multiline": False,
        "max_length": 3000,
        "initial_value": "Wrong-number top-ups",
    }
    assert answer["element"]["multiline"] is True and "initial_value" not in answer["element"]
    assert [b["optional"] for b in view["blocks"]] == [False, False, False, True, False]
    assert visibility["element"]["type"] == "static_select"
    assert [o["value"] for o in visibility["element"]["options"]] == ["team", "everyone"]
    assert "initial_option" not in visibility["element"]
    assert team["element"]["initial_option"]["value"] == "care"
    assert tags["label"] == {"type": "plain_text", "text": "Tags"}


def test_a_submitted_modal_comes_back_as_field_values() -> None:
    view = modal_view(RESOLVE)
    submitted = submission(
        view,
        {
            "title": "Wrong-number top-ups",
            "answer": "Reverse with TU-07.\nThen call back.",
            "visibility": "everyone",
            "tags": None,  # an optional field left empty arrives as null
            "team": "care",
        },
    )
    assert form_values(submitted) == {
        "title": "Wrong-number top-ups",
        "answer": "Reverse with TU-07.\nThen call back.",
        "visibility": "everyone",
        "tags": "",
        "team": "care",
    }
    nothing_chosen = submission(view, {"visibility": None})
    assert form_values(nothing_chosen)["visibility"] == ""
    assert form_values({}) == {}


def test_a_form_in_a_message_points_to_the_dialog() -> None:
    (block,) = render_blocks(Reply.of(RESOLVE))
    assert block["type"] == "section"
    assert "opens in a dialog" in block["text"]["text"]
    assert "Resolve huddle #42" in block["text"]["text"]


def test_picker_values_come_from_every_multi_select_in_the_state() -> None:
    state = {
        "b1": {
            "experts": {
                "type": "multi_static_select",
                "selected_options": [
                    {"text": {"type": "plain_text", "text": "Maria"}, "value": "7"},
                    {"text": {"type": "plain_text", "text": "Omar"}, "value": "9"},
                ],
            }
        },
        "b2": {"teams~2": {"type": "multi_static_select", "selected_options": []}},
        "b3": {"note": {"type": "plain_text_input", "value": "hello"}},
        "b4": {"one": {"type": "static_select", "selected_option": {"value": "x"}}},
    }
    assert picker_values(state) == {"experts": "7,9", "teams": ""}
    assert picker_values({}) == {}
