"""Full-text search: the best `limit` entries are the first `limit` of the whole ranking.

Entries are drawn from a small vocabulary, so that a question's words often meet
in one entry and scores tie: the cases where choosing the best among the matched
entries, rather than among all, could drop or misorder one.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.matching.lexical import FullTextIndex

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
