"""User text: the one tokenizer every lexical signal shares, and where text may be cut.

`is_grapheme_boundary` follows the extended grapheme cluster rules of Unicode
UAX #29 closely enough for chat text, so renderers that shorten text never cut
an emoji sequence, a flag, a Hangul syllable or a letter with its marks in two.
"""

from __future__ import annotations

import re
import unicodedata

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

_ZWJ = "\u200d"
_EXTEND_EXTRA = {
    "\u200c",  # zero-width non-joiner
    _ZWJ,
    "\uff9e",  # halfwidth katakana voiced sound marks
    "\uff9f",
}


def _is_extend(char: str) -> bool:
    """Joins the character before it (grapheme rules GB9, GB9a)."""
    cp = ord(char)
    return (
        unicodedata.category(char) in {"Mn", "Me", "Mc"}
        or char in _EXTEND_EXTRA
        or 0xFE00 <= cp <= 0xFE0F  # variation selectors (text / emoji presentation)
        or 0x1F3FB <= cp <= 0x1F3FF  # emoji skin-tone modifiers
        or 0xE0020 <= cp <= 0xE007F  # tag characters (subdivision flags)
        or 0xE0100 <= cp <= 0xE01EF  # variation selectors supplement
    )


def _is_pictographic(char: str) -> bool:
    cp = ord(char)
    return 0x1F000 <= cp <= 0x1FAFF or unicodedata.category(char) == "So"


def _is_regional(char: str) -> bool:
    return 0x1F1E6 <= ord(char) <= 0x1F1FF


def _is_control(char: str) -> bool:
    return unicodedata.category(char) in {"Cc", "Zl", "Zp"}


def _hangul(char: str) -> str:
    """Hangul syllable type: L, V, T, LV, LVT or '' (grapheme rules GB6–GB8)."""
    cp = ord(char)
    if 0x1100 <= cp <= 0x115F or 0xA960 <= cp <= 0xA97C:
        return "L"
    if 0x1160 <= cp <= 0x11A7 or 0xD7B0 <= cp <= 0xD7C6:
        return "V"
    if 0x11A8 <= cp <= 0x11FF or 0xD7CB <= cp <= 0xD7FB:
        return "T"
    if 0xAC00 <= cp <= 0xD7A3:
        return "LV" if (cp - 0xAC00) % 28 == 0 else "LVT"
    return ""


def is_grapheme_boundary(text: str, index: int) -> bool:
    """Whether a cut between text[index - 1] and text[index] leaves every grapheme whole."""
    if index <= 0 or index >= len(text):
        return True
    before, after = text[index - 1], text[index]
    if before == "\r" and after == "\n":
        return False
    if "\ud800" <= before <= "\udbff" and "\udc00" <= after <= "\udfff":
        return False  # a surrogate pair that arrived as two code points
    if _is_control(before) or _is_control(after):
        return True
    if _is_extend(after):
        return False
    if before == _ZWJ and _is_pictographic(after):
        return False  # emoji ZWJ sequences: 👩‍👩‍👧
    if _is_regional(before) and _is_regional(after):
        # Flags are pairs: break only after an even run of regional indicators.
        run = 0
        while index - 1 - run >= 0 and _is_regional(text[index - 1 - run]):
            run += 1
        return run % 2 == 0
    left, right = _hangul(before), _hangul(after)
    if left == "L" and right in {"L", "V", "LV", "LVT"}:
        return False
    if left in {"LV", "V"} and right in {"V", "T"}:
        return False
    return not (left in {"LVT", "T"} and right == "T")
