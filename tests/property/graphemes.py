"""An independent check of extended grapheme cluster boundaries (Unicode UAX #29).

Written from the standard's rules, not from the renderers' code, so a cut they make
can be judged by something that does not share their mistakes. Property tables are
approximated from `unicodedata` (Python has no Grapheme_Cluster_Break property);
the approximations only ever make this check stricter about where a cut may go
for the characters the strategies generate.
"""

from __future__ import annotations

import unicodedata

ZWJ = "\u200d"


def _hangul(cp: int) -> str | None:
    if 0x1100 <= cp <= 0x115F or 0xA960 <= cp <= 0xA97C:
        return "L"
    if 0x1160 <= cp <= 0x11A7 or 0xD7B0 <= cp <= 0xD7C6:
        return "V"
    if 0x11A8 <= cp <= 0x11FF or 0xD7CB <= cp <= 0xD7FB:
        return "T"
    if 0xAC00 <= cp <= 0xD7A3:
        return "LV" if (cp - 0xAC00) % 28 == 0 else "LVT"
    return None


def category(char: str) -> str:
    """The Grapheme_Cluster_Break class of one code point (approximated)."""
    cp = ord(char)
    if char == "\r":
        return "CR"
    if char == "\n":
        return "LF"
    if char == ZWJ:
        return "ZWJ"
    general = unicodedata.category(char)
    if (
        general in {"Mn", "Me"}
        or char in "\u200c\uff9e\uff9f"
        or 0x1F3FB <= cp <= 0x1F3FF  # emoji modifiers
        or 0xE0020 <= cp <= 0xE007F  # tags
    ):
        return "Extend"
    if general in {"Cc", "Cf", "Zl", "Zp", "Cs"}:
        return "Control"
    if general == "Mc":
        return "SpacingMark"
    if 0x1F1E6 <= cp <= 0x1F1FF:
        return "RI"
    hangul = _hangul(cp)
    if hangul:
        return hangul
    if 0x1F000 <= cp <= 0x1FAFF or 0x2600 <= cp <= 0x27BF or general == "So":
        return "ExtPict"
    return "Other"


def is_boundary(text: str, index: int) -> bool:
    """Whether text[:index] ends on a grapheme cluster boundary (GB1–GB999)."""
    if index <= 0 or index >= len(text):
        return True  # GB1, GB2
    before, after = category(text[index - 1]), category(text[index])
    if before == "CR" and after == "LF":
        return False  # GB3
    if before in {"Control", "CR", "LF"} or after in {"Control", "CR", "LF"}:
        # A surrogate pair that arrived as two code points is still one character.
        high = "\ud800" <= text[index - 1] <= "\udbff"
        return not (high and "\udc00" <= text[index] <= "\udfff")  # GB4, GB5
    if before == "L" and after in {"L", "V", "LV", "LVT"}:
        return False  # GB6
    if before in {"LV", "V"} and after in {"V", "T"}:
        return False  # GB7
    if before in {"LVT", "T"} and after == "T":
        return False  # GB8
    if after in {"Extend", "ZWJ", "SpacingMark"}:
        return False  # GB9, GB9a
    if before == "ZWJ" and after == "ExtPict":
        i = index - 2
        while i >= 0 and category(text[i]) == "Extend":
            i -= 1
        if i >= 0 and category(text[i]) == "ExtPict":
            return False  # GB11
    if before == "RI" and after == "RI":
        run, i = 0, index - 1
        while i >= 0 and category(text[i]) == "RI":
            run, i = run + 1, i - 1
        return run % 2 == 0  # GB12, GB13
    return True  # GB999


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
