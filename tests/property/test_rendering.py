"""Rendering any reply: never raises, never pings from user text, always within limits.

The limits themselves are in tests/property/checks.py.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from adapters.console.render import Buttons, render
from adapters.slack import render as slack
from adapters.teams import render as teams
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
    PresenceView,
    Reply,
    TagMatch,
    Text,
)
from tests.property import strategies as s
from tests.property.checks import (
    FALLBACK_TEXT,
    MESSAGE_BLOCKS,
    VIEW_BLOCKS,
    assert_blocks,
    assert_inert_mrkdwn,
    assert_modal,
    assert_teams_activity,
    slack_user_ids,
    teams_ids,
)
from tests.property.graphemes import has_lone_surrogate, is_boundary, utf16_units

# The checklist's hostile knowledge text, and what Slack must be sent for it.
HOSTILE = "<!channel> & <@U1>"
HOSTILE_ESCAPED = "&lt;!channel&gt; &amp; &lt;@U1&gt;"


@pytest.mark.reliability(13)
@given(reply=s.replies)
@example(reply=Reply.of(Article(1, HOSTILE, HOSTILE, tags=(HOSTILE,)), Text(HOSTILE)))
@example(reply=Reply.of(Line((Mention(1, "Maria", handle="U1><!channel"), HOSTILE))))
# Found: a value of 1,001 emoji is 2,002 UTF-16 units, past Slack's 2,000.
@example(reply=Reply.of(Actions((Button("Go", "kb.helpful", "👍🏽" * 500 + "👍"),))))
# Found: a blank tag made an empty context text, which Slack rejects.
@example(reply=Reply.of(Article(1, "", "", tags=("",))))
def test_slack_messages_never_ping_from_user_text_and_fit_block_kit(reply: Reply) -> None:
    for handles in ({}, s.handles_for(reply)):
        allowed = slack_user_ids(reply, handles)
        blocks = slack.render_blocks(reply, handles=handles)
        assert_blocks(blocks, MESSAGE_BLOCKS, allowed)
        home = slack.home_view(reply, handles=handles)
        assert home["type"] == "home"
        assert_blocks(home["blocks"], VIEW_BLOCKS, allowed)
    text = slack.fallback_text(reply)
    assert utf16_units(text) <= FALLBACK_TEXT
    assert_inert_mrkdwn(text, slack_user_ids(reply, {}))
    json.dumps(blocks)  # what slack_sdk sends: serialisable as it is


@pytest.mark.reliability(13)
def test_knowledge_text_reaches_slack_escaped() -> None:
    reply = Reply.of(Article(7, HOSTILE, HOSTILE, tags=(HOSTILE,)))
    rendered = json.dumps(slack.render_blocks(reply), ensure_ascii=False)
    assert rendered.count(HOSTILE_ESCAPED) == 3
    assert slack.fallback_text(Reply.of(Text(HOSTILE))) == HOSTILE_ESCAPED


def _numbered(fields: tuple[FormField, ...]) -> tuple[FormField, ...]:
    """Field names are unique in a form (they are its keys): number repeated ones."""
    return tuple(replace(f, name=f"{f.name}.{i}") for i, f in enumerate(fields))


forms = st.builds(
    Form,
    title=s.user_text,
    action_id=s.names,
    fields=s.many(s.form_fields, 4, 30).map(_numbered),
    submit_label=s.user_text,
    value=s.short_text,
)


@given(form=forms)
# Found: a select with no choices became a static_select without options (Slack rejects it).
@example(form=Form("Pick", "x.pick", (FormField("team", "Team", kind="select"),)))
def test_slack_modals_fit_block_kit(form: Form) -> None:
    assert_modal(slack.modal_view(form))


# --- Slack: grapheme-safe truncation ----------------------------------------------------

limits = st.integers(0, 120)


@given(text=st.one_of(s.clean_text, s.user_text.map(lambda t: t[:400])))
@example(text="a\r\n\u1100\u1161\u11a8👩\u200d👩\u200d👧🇬🇧🇫🇷🇩e\u0301")
# Unicode 15.1's Indic conjuncts (GB9c), which the hand-written rules before did not know.
@example(text="\u0915\u094d\u0937\u093f")
@example(text="ab\ud83d\ude00\u0301\ud83d")  # a pair as two code points, a lone half
def test_grapheme_boundaries_read_up_to_the_cut_are_those_of_the_whole_text(text: str) -> None:
    for index in range(len(text) + 1):
        assert is_grapheme_boundary(text, index) == is_boundary(text, index), (text, index)


@pytest.mark.reliability(15)
@given(text=s.clean_text, limit=limits)
@example(text="ab" + "\ud83d\ude00" * 3, limit=5)
@example(text="x" + "\u1100\u1161\u11a8" * 4, limit=6)
def test_slack_truncation_cuts_between_graphemes_within_the_limit(text: str, limit: int) -> None:
    cut = slack.truncate(text, limit)
    assert len(cut) <= limit and utf16_units(cut) <= limit
    if cut == text:
        return
    kept = cut.removesuffix(slack.ELLIPSIS)
    assert cut.endswith(slack.ELLIPSIS) or cut == ""
    assert text.startswith(kept)
    assert is_boundary(text, len(kept)), (text, limit, cut)
    assert not has_lone_surrogate(cut)
    if text.isascii() and not any(c.isspace() for c in text) and limit:
        assert kept == text[: limit - 1]  # as much as fits: every cut is a boundary here


@pytest.mark.reliability(15)
@given(pieces=st.lists(s.clean_piece, min_size=1, max_size=40), repeat=st.integers(1, 3_000))
@settings(max_examples=60)
def test_a_45000_character_answer_renders_within_every_limit(
    pieces: list[str], repeat: int
) -> None:
    seed = "".join(pieces) or "a"
    answer = (seed * (45_000 // len(seed) + 1))[:45_000]
    cut = answer[: min(len(answer), repeat * 15)]
    reply = Reply.of(
        Text(answer),
        Notice(answer, "warning"),
        Article(5, cut, answer, tags=(cut,)),
        PersonCard(1, "m", cut, cut, PresenceView("busy", cut), (TagMatch(cut, 3, True),), answer),
        Line((answer, Mention(1, "Maria", "UMARIA"), answer)),
    )
    blocks = slack.render_blocks(reply, handles={1: "UMARIA"})
    assert_blocks(blocks, MESSAGE_BLOCKS, {"UMARIA"})
    # The answer's own section: a prefix of it, cut between graphemes, marked as cut.
    shown, whole = blocks[0]["text"]["text"], slack.escape(answer)
    kept = shown.removesuffix(slack.ELLIPSIS)
    assert shown == whole or (shown.endswith(slack.ELLIPSIS) and whole.startswith(kept))
    assert is_boundary(whole, len(kept)) and not has_lone_surrogate(shown)
    assert utf16_units(slack.fallback_text(reply)) <= FALLBACK_TEXT
    assert_teams_activity(teams.render_activity(reply, handles={1: "29:m"}), {"UMARIA", "29:m"})


# --- Teams: Adaptive Cards --------------------------------------------------------------


@given(reply=s.replies)
@example(reply=Reply.of(Text("<at>Maria</at>"), Line((Mention(1, "Maria", handle="29:m"),))))
# Found: a lone surrogate made the card's size check raise UnicodeEncodeError.
@example(reply=Reply.of(Text("\ud83d"), Line((Mention(1, "\ude00", handle="29:m"),))))
@example(reply=Reply.of(Line((Mention(1, "", handle="\ud83d"),))))
# Found: a person's name made a Markdown link inside the <at> of their mention.
@example(reply=Reply.of(Line((Mention(1, "[click](https://evil.example)", handle="29:m"),))))
def test_teams_cards_never_mention_from_user_text_and_fit_a_message(reply: Reply) -> None:
    for handles in ({}, s.handles_for(reply)):
        activity = teams.render_activity(reply, handles=handles)
        assert_teams_activity(activity, teams_ids(reply, handles))


@pytest.mark.reliability(15)
@given(text=s.clean_text, limit=limits)
@example(text="x" + "\u1100\u1161\u11a8" * 4, limit=6)
def test_teams_clipping_cuts_between_graphemes_within_the_limit(text: str, limit: int) -> None:
    cut = teams.clip(text, limit)
    assert len(cut) <= max(limit, 1)
    if cut == text:
        return
    kept = cut.removesuffix(teams.ELLIPSIS)
    assert text.startswith(kept)
    assert is_boundary(text, len(kept)), (text, limit, cut)
    assert not has_lone_surrogate(cut)


# --- the console ------------------------------------------------------------------------


TERMINAL_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


@given(reply=s.replies)
# Found: a lone surrogate reached the terminal, whose UTF-8 encoder refuses it.
@example(reply=Reply.of(Text("\ud83d")))
# Found: a presence label's escape sequence reached the terminal as it was.
@example(reply=Reply.of(PersonCard(1, "k", "n", None, PresenceView("busy", "\x1b[2J"))))
@settings(max_examples=60)
def test_console_rendering_never_raises_nor_lets_terminal_controls_through(reply: Reply) -> None:
    shown = render(reply, Buttons())
    assert TERMINAL_CONTROLS.search(shown) is None, repr(shown[:200])
    shown.encode("utf-8")  # what the terminal's writer does with it
