"""Full-text search: the best `limit` entries are the first `limit` of the whole ranking.

Entries are drawn from a small vocabulary, so that a question's words often meet
in one entry and scores tie: the cases where choosing the best among the matched
entries, rather than among all, could drop or misorder one.
"""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.matching.lexical import FullTextIndex, stem
from bot.text import terms

WORDS = ["refund", "prepaid", "topup", "roaming", "porting", "invoice", "sim", "credit"]
text = st.lists(st.sampled_from(WORDS), min_size=1, max_size=6).map(" ".join)
entries = st.lists(st.tuples(text, text), min_size=1, max_size=60)


@settings(max_examples=300, deadline=None)
@given(entries=entries, query=text, limit=st.integers(min_value=1, max_value=12))
def test_the_best_few_are_the_head_of_the_whole_ranking(
    entries: list[tuple[str, str]], query: str, limit: int
) -> None:
    index = FullTextIndex((100 + i, title, body) for i, (title, body) in enumerate(entries))
    everything = index.search(query, len(entries))
    assert index.search(query, limit) == everything[:limit]
    matching = {
        100 + i
        for i, (title, body) in enumerate(entries)
        if set(query.split()) & set(f"{title} {body}".split())
    }
    assert {entry_id for entry_id, _ in everything} == matching


# Written forms the index folds: case, plurals, stopwords, one-letter words.
FORMS = [*WORDS, "Refunds", "SIMs", "invoices", "the", "a", "Credit"]
form_text = st.lists(st.sampled_from(FORMS), min_size=1, max_size=6).map(" ".join)


@settings(max_examples=300, deadline=None)
@given(
    entries=st.lists(st.tuples(form_text, form_text), min_size=1, max_size=30),
    query=form_text,
    asked=st.lists(st.integers(min_value=95, max_value=135), max_size=12),
    order=st.randoms(use_true_random=False),
)
def test_coverage_counts_the_question_stems_each_entry_contains(
    entries: list[tuple[str, str]], query: str, asked: list[int], order: random.Random
) -> None:
    rows = [(100 + i, title, body) for i, (title, body) in enumerate(entries)]
    order.shuffle(rows)  # in id order from the database; any order must do
    index = FullTextIndex(rows)
    words = set(terms(query))
    expected = {
        entry_id: len({stem(w) for w in words} & {stem(w) for w in terms(" ".join(entry))})
        for entry_id in asked
        if 0 <= entry_id - 100 < len(entries)
        for entry in [entries[entry_id - 100]]
    }
    assert index.coverage(words, asked) == expected
