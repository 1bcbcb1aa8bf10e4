"""Tag vectors as the ranking sees them: near-duplicate tags told apart, hubs discounted."""

from __future__ import annotations

import numpy as np

from bot.matching.vectors import distinct_tags


def unit(*values: float) -> np.ndarray:
    vector = np.array(values, dtype=np.float32)
    return vector / np.linalg.norm(vector)


def test_a_question_between_two_near_duplicate_tags_goes_to_the_one_it_leans_to() -> None:
    tags = np.stack([unit(1, 0.2, 0), unit(1, 0, 0.2), unit(0, 0, 1)])
    question = unit(1, 0.15, 0.1)  # a little closer to the first, yet close to both
    plain = tags @ question
    adjusted, _ = distinct_tags(tags, neighbour_share=0.5, hub_neighbours=1)
    margin_before = plain[0] - plain[1]
    margin_after = (adjusted @ question)[0] - (adjusted @ question)[1]
    assert margin_after > 2 * margin_before > 0
    assert np.allclose(np.linalg.norm(adjusted, axis=1), 1.0, atol=1e-5)


def test_a_tag_close_to_many_others_is_discounted_and_a_lone_tag_is_not() -> None:
    tags = np.stack([unit(1, 1, 1, 0), unit(1, 0, 0, 0), unit(0, 1, 0, 0), unit(0, 0, 0, 1)])
    _, hubness = distinct_tags(tags, neighbour_share=0.0, hub_neighbours=2)
    assert hubness[0] == hubness.max() > 0  # near both others
    assert hubness[3] == hubness.min() < 0  # near nothing
    assert abs(float(hubness.mean())) < 1e-6


def test_one_tag_or_none_is_left_as_it_is() -> None:
    single = np.stack([unit(1, 2, 3)])
    adjusted, hubness = distinct_tags(single, neighbour_share=0.2, hub_neighbours=10)
    assert np.array_equal(adjusted, single) and hubness.tolist() == [0.0]
    empty = np.zeros((0, 3), dtype=np.float32)
    adjusted, hubness = distinct_tags(empty, neighbour_share=0.2, hub_neighbours=10)
    assert adjusted.shape == (0, 3) and hubness.shape == (0,)
