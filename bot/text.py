"""User text: the one tokenizer every lexical signal shares, and where text may be cut.

`is_grapheme_boundary` asks the `regex` module's `\\X` (Unicode's extended
grapheme clusters, UAX #29, at the Unicode version that module ships), so renderers
that shorten text never cut an emoji sequence, a flag, a Hangul syllable, an Indic
conjunct or a letter with its marks in two, and keep up as Unicode adds more.
"""

from __future__ import annotations

import re

import regex

WORD = re.compile(r"[^\W_]+(?:['’-][^\W_]+)*", re.UNICODE)
STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "can",
        "do",
        "does",
        "for",
        "from",
        "how",
        "i",
        "in",
        "is",
        "it",
        "my",
        "of",
        "on",
        "or",
        "our",
        "the",
        "to",
        "what",
        "when",
        "where",
        "who",
        "why",
        "with",
        "you",
        "your",
        "me",
        "we",
        "they",
        "this",
        "that",
        "there",
        "about",
        "has",
        "have",
        "need",
        "help",
        "please",
    ]
)
MAX_QUERY_CHARS = 2_000


_SURROGATE = re.compile(r"[\ud800-\udfff]")


def well_formed(text: str) -> str:
    """Text every encoder takes: a lone surrogate (half an emoji, as a JSON `\\ud83d`
    escape cut from its pair can leave) becomes U+FFFD, and a pair that arrived as two
    code points is joined into its character."""
    if _SURROGATE.search(text) is None:
        return text
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def clean_text(text: str) -> str:
    """PostgreSQL refuses NUL in text, and no user means one: drop it everywhere.

    Neither database stores a lone surrogate either: those become U+FFFD."""
    return well_formed(text).replace("\x00", "")


# Every id column is PostgreSQL's `integer`: a larger number is no row, and an error there.
MAX_ID = 2**31 - 1


def parse_id(token: str) -> int | None:
    """A row id as typed (`12`, `#12`) or sent back by a button; None when it cannot be one.

    ASCII digits only: `str.isdigit` also takes `²`, which `int` refuses."""
    number = token.strip().lstrip("#")
    if not (number.isascii() and number.isdigit()) or len(number) > len(str(MAX_ID)):
        return None
    value = int(number)
    return value if value <= MAX_ID else None


def terms(text: str) -> list[str]:
    """Lower-cased content words, in order, without repeats."""
    words = (w.lower() for w in WORD.findall(clean_text(text)[:MAX_QUERY_CHARS]))
    return list(dict.fromkeys(w for w in words if w not in STOPWORDS and len(w) > 1))


# --- grapheme clusters -----------------------------------------------------------------

_CLUSTER = regex.compile(r"\X")


def is_grapheme_boundary(text: str, index: int) -> bool:
    """Whether a cut between text[index - 1] and text[index] leaves every grapheme whole.

    Whether `index` is a boundary depends on the text up to text[index] alone (each rule
    looks at the character after a boundary and back from it), so only that much is read:
    a renderer cutting at its limit reads the limit's worth, however long the text."""
    if index <= 0 or index >= len(text):
        return True
    if "\ud800" <= text[index - 1] <= "\udbff" and "\udc00" <= text[index] <= "\udfff":
        return False  # a surrogate pair that arrived as two code points: one character
    for cluster in _CLUSTER.finditer(text, 0, index + 1):
        if cluster.end() >= index:
            return cluster.end() == index
    return True  # not reached: the clusters cover text[: index + 1]
