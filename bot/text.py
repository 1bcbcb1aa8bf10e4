"""Words out of user text: the one tokenizer every lexical signal shares."""

from __future__ import annotations

import re

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


def clean_text(text: str) -> str:
    """PostgreSQL refuses NUL in text, and no user means one: drop it everywhere."""
    return text.replace("\x00", "")


def terms(text: str) -> list[str]:
    """Lower-cased content words, in order, without repeats."""
    words = (w.lower() for w in WORD.findall(clean_text(text)[:MAX_QUERY_CHARS]))
    return list(dict.fromkeys(w for w in words if w not in STOPWORDS and len(w) > 1))
