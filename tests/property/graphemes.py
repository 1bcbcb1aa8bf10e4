"""Grapheme cluster boundaries for the property tests to judge cuts by: Unicode's extended
grapheme clusters (UAX #29) as the `regex` module segments a whole text, from its start.

The renderers ask `bot.text.is_grapheme_boundary`, which reads only as far as the cut;
the tests hold every cut to the segmentation of the whole text. A surrogate pair that
arrived as two code points is one character here too.
"""

from __future__ import annotations

from functools import lru_cache

import regex

_CLUSTER = regex.compile(r"\X")


def _splits_a_pair(text: str, index: int) -> bool:
    return (
        0 < index < len(text)
        and "\ud800" <= text[index - 1] <= "\udbff"
        and "\udc00" <= text[index] <= "\udfff"
    )


@lru_cache(maxsize=64)
def boundaries(text: str) -> frozenset[int]:
    """Every index a cut may be made at, 0 and len(text) included."""
    found = {0, len(text)} | {m.end() for m in _CLUSTER.finditer(text)}
    return frozenset(i for i in found if not _splits_a_pair(text, i))


def is_boundary(text: str, index: int) -> bool:
    """Whether text[:index] ends on a grapheme cluster boundary."""
    return index in boundaries(text)


def has_lone_surrogate(text: str) -> bool:
    for i, char in enumerate(text):
        if "\ud800" <= char <= "\udbff":
            if not (i + 1 < len(text) and "\udc00" <= text[i + 1] <= "\udfff"):
                return True
        elif "\udc00" <= char <= "\udfff" and not (i > 0 and "\ud800" <= text[i - 1] <= "\udbff"):
            return True
    return False


def utf16_units(text: str) -> int:
    return len(text.encode("utf-16-le", "surrogatepass")) // 2
