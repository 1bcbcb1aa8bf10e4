"""Hypothesis strategies: hostile user text and every neutral element built from it.

User text mixes random code points (lone surrogates included) with the pieces that
break chat renderers: platform mention tokens, escapes, emoji ZWJ sequences, flags,
combining marks, Hangul jamo, right-to-left text, CR LF, and strings long enough to
meet every limit.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from hypothesis import strategies as st

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

# Slack tokens that ping or link when they reach a message unescaped.
SLACK_TOKENS = (
    "<!channel>",
    "<!here>",
    "<!everyone>",
    "<!here|here>",
    "<@U123>",
    "<@W0ABC|maria>",
    "<#C123|x>",
    "<!subteam^S1>",
    "<!subteam^S1|@team>",
    "<!date^1392734382^{date}|x>",
    "<https://evil.example|click>",
)
# Teams: a mention is `<at>…</at>` with an entity; links and date macros are Markdown.
TEAMS_TOKENS = (
    "<at>x</at>",
    "<at>Maria Santos</at>",
    "[click](https://evil.example)",
    "{{DATE(2017-02-14T06:08:39Z)}}",
    "<b>bold</b>",
)
CLUSTERS = (
    "👩\u200d👩\u200d👧",  # ZWJ family
    "🧑🏽\u200d🚀",  # skin tone inside a ZWJ sequence
    "🇬🇧",
    "🇬🇧🇫🇷🇩",  # an odd run of regional indicators
    "🏴\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f",  # subdivision flag
    "e\u0301",
    "a\u0308\u0323\u0301",
    "👍🏽",
    "❤\ufe0f",
    "\u1100\u1161\u11a8",  # Hangul jamo L V T
    "\uac00\u11a8",  # Hangul LV + T
    "\u0915\u094d\u0937",  # Devanagari conjunct
    "\r\n",
    "\u200d",
    "\u200c",
)
OTHER = (
    "&",
    "<",
    ">",
    "&amp;",
    "&lt;",
    "&#60;",
    "@everyone",
    "@channel",
    "@here",
    "@maria",
    "*bold*",
    "_i_",
    "`",
    "```",
    "~",
    "|",
    ":",
    "\n",
    " ",
    "\t",
    "\x00",
    "\x1b[31m",
    "\u2028",
    "\u2060",
    "\u200f",  # right-to-left mark
    "\u202e",  # right-to-left override
    "مرحبا بالعالم",
    "שלום",
    "日本語のテキスト",
    "\ufeff",
    "\ud83d",  # a lone high surrogate
    "\ude00",  # a lone low surrogate
)
FRAGMENTS = SLACK_TOKENS + TEAMS_TOKENS + CLUSTERS + OTHER

# Every code point, surrogates included (hypothesis leaves them out by default).
any_char = st.characters(exclude_categories=())
_piece = st.one_of(st.sampled_from(FRAGMENTS), st.text(any_char, max_size=8))
short_text = st.lists(_piece, max_size=6).map("".join)


def _repeat(seed: str, length: int) -> str:
    return (seed * (length // len(seed) + 1))[:length]


# Up to ~50,000 characters: a short hostile seed repeated, then cut anywhere.
seed_text = st.lists(_piece, min_size=1, max_size=6).map("".join).filter(bool)
long_text = st.builds(_repeat, seed_text, st.integers(1, 50_000))
# One string in eight is long: enough for every reply to meet a limit somewhere.
user_text = st.one_of(*[short_text] * 7, long_text)

# Text made only of whole, well-formed pieces: what the grapheme checks run on.
clean_piece = st.one_of(
    st.sampled_from((*CLUSTERS, "a", "b ", "&", "<", "日", "ا")),
    st.text(st.characters(exclude_categories=("Cs",)), max_size=3),
)
clean_text = st.lists(clean_piece, max_size=60).map("".join)


def many(strategy: st.SearchStrategy[Any], drawn: int, times: int) -> st.SearchStrategy[tuple]:
    """Up to drawn × times items, cheaply: a few drawn, then repeated (limits are about counts)."""
    return st.builds(
        lambda items, n: tuple(items) * n, st.lists(strategy, max_size=drawn), st.integers(1, times)
    )


ids = st.integers(1, 2**31 - 1)
# Slack user ids, Teams AAD object ids and 29: ids, and junk that must never become a token.
handles = st.one_of(
    st.sampled_from(["UMARIA", "W0ABC123", "U1", "29:maria"]),
    st.uuids().map(str),
    short_text,
)
severities = st.sampled_from(["info", "success", "warning", "error"])
statuses = st.one_of(
    st.sampled_from(["available", "busy", "on_call", "away", "off", "off_shift"]), short_text
)
maybe_text = st.one_of(st.none(), user_text)
# Action ids, picker and field names are ours, but nothing stops a long or odd one.
names = st.one_of(
    st.sampled_from(["kb.helpful", "huddle.start", "experts", "title", "answer"]),
    st.from_regex(r"[a-z][a-z0-9._-]{0,60}", fullmatch=True),
)


@st.composite
def mentions(draw: st.DrawFn) -> Mention:
    return Mention(draw(ids), draw(user_text), draw(st.one_of(st.none(), handles)))


presence_views = st.builds(
    PresenceView,
    status=statuses,
    label=user_text,
    until=st.none(),
    local_time=maybe_text,
    until_local=maybe_text,
)
tag_matches = st.builds(TagMatch, user_text, st.integers(-1, 10), st.booleans())
texts = st.builds(Text, user_text)
notices = st.builds(Notice, user_text, severities)
lines = st.builds(Line, st.lists(st.one_of(user_text, mentions()), max_size=6).map(tuple))
person_cards = st.builds(
    PersonCard,
    person_id=ids,
    key=short_text,
    name=user_text,
    team=maybe_text,
    presence=presence_views,
    tags=many(tag_matches, 3, 4),
    reason=user_text,
    score=st.floats(allow_nan=False),
)
articles = st.builds(
    Article,
    entry_id=ids,
    title=user_text,
    snippet=user_text,
    tags=many(user_text, 3, 4),
    score=st.floats(allow_nan=False),
    helpful=st.integers(0, 10_000),
)
buttons = st.builds(
    Button,
    label=user_text,
    action_id=names,
    value=st.one_of(short_text, long_text),
    style=st.sampled_from(["default", "primary", "danger"]),
)
options = st.builds(Option, value=st.one_of(ids.map(str), short_text), label=user_text)
pickers = st.builds(
    Picker,
    name=names,
    label=user_text,
    options=many(options, 4, 35),
    selected=st.lists(st.one_of(ids.map(str), short_text), max_size=5).map(tuple),
)
actions = st.builds(
    Actions,
    buttons=many(buttons, 4, 9),
    picker=st.one_of(st.none(), pickers),
)
form_fields = st.builds(
    FormField,
    name=names,
    label=user_text,
    kind=st.sampled_from(["text", "multiline", "select"]),
    options=many(user_text, 4, 30),
    required=st.booleans(),
    value=user_text,
)
forms = st.builds(
    Form,
    title=user_text,
    action_id=names,
    fields=many(form_fields, 4, 3),
    submit_label=user_text,
    value=short_text,
)
elements = st.one_of(texts, notices, lines, person_cards, articles, actions, forms)
replies = st.builds(Reply, many(elements, 6, 10), private=st.booleans())


def handles_for(reply: Reply) -> dict[int, str]:
    """Every person id in a reply, so a test can pass them all as known handles."""
    found: dict[int, str] = {}
    for element in reply.elements:
        if isinstance(element, PersonCard):
            found[element.person_id] = f"U{element.person_id}"
        if isinstance(element, Line):
            for part in element.parts:
                if isinstance(part, Mention):
                    found[part.person_id] = f"U{part.person_id}"
    return found


# --- platform payloads with arbitrary strings --------------------------------------------

json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), user_text
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(short_text, inner, max_size=4)
    ),
    max_leaves=12,
)


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """The value, or a field left out (None), or something of the wrong type."""
    return st.one_of(st.none(), strategy, json_values)


def unique_field_names(reply: Reply) -> Reply:
    """The reply with each form's field names made unique (they are the form's keys, and
    Slack's block ids): repeated ones numbered, as no skill would repeat them."""

    def numbered(element: Any) -> Any:
        if not isinstance(element, Form):
            return element
        fields = tuple(replace(f, name=f"{f.name}.{i}") for i, f in enumerate(element.fields))
        return replace(element, fields=fields)

    return replace(reply, elements=tuple(numbered(e) for e in reply.elements))


# Replies as skills make them: what the platforms' own validators are fed.
well_formed_replies = replies.map(unique_field_names)
