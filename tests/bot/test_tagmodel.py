"""Each tag's model: learned from its name, its knowledge and use, refitted as they change."""

from __future__ import annotations

import numpy as np
import pytest

from bot.db.models import KnowledgeEntry, Person, Role
from bot.matching import Matcher, tagmodel
from bot.matching.embeddings import load_encoder
from bot.services import Services, knowledge
from bot.services.people import by_key
from tests.bot.test_matching import Org, needs_model, rank

DIMENSIONS = 16


def _cluster(rng: np.random.Generator, centre: np.ndarray, count: int) -> np.ndarray:
    points = centre + 0.35 * rng.standard_normal((count, len(centre)))
    return (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture
def centres() -> np.ndarray:
    rng = np.random.default_rng(3)
    matrix = rng.standard_normal((3, DIMENSIONS))
    return (matrix / np.linalg.norm(matrix, axis=1, keepdims=True)).astype(np.float32)


def _builder(
    centres: np.ndarray, per_tag: int, latent: bool = False, seed: int = 0
) -> tuple[tagmodel.ItemsBuilder, np.ndarray]:
    """Tags 10, 11, 12 with their "names" at the centres and `per_tag` items each.

    `latent`: the first tag's items only say "10 or 11" (as an answer whose author
    holds both tags does); the model is to find out which."""
    rng = np.random.default_rng(seed)
    builder = tagmodel.ItemsBuilder([10, 11, 12])
    builder.block(centres, [(row, (10 + row,), False) for row in range(len(centres))], 1.0)
    items = np.vstack([_cluster(rng, centre, per_tag) for centre in centres])
    labels = []
    for row in range(len(items)):
        tag = 10 + row // per_tag
        unsure = latent and tag == 10
        labels.append((row, (10, 11) if unsure else (tag,), unsure))
    builder.block(items, labels, 1.0)
    return builder, items


def test_a_model_fitted_on_each_tags_items_tells_the_tags_apart(centres: np.ndarray) -> None:
    builder, _ = _builder(centres, 30)
    model = tagmodel.fit(builder.build())
    questions = _cluster(np.random.default_rng(9), centres[1], 20)
    chosen = [model.tag_ids[int(np.argmax(model.logits(q)))] for q in questions]
    assert chosen.count(11) >= 18
    # The prototypes are the weighted sums: the name and its 30 items.
    assert model.counts.tolist() == pytest.approx([31.0, 31.0, 31.0])
    assert model.support().tolist() == pytest.approx([30.0, 30.0, 30.0])


def test_an_item_that_may_be_about_several_tags_goes_to_the_one_it_is_closest_to(
    centres: np.ndarray,
) -> None:
    per_tag = 30
    builder, _ = _builder(centres, per_tag, latent=True)
    items = builder.build()
    model = tagmodel.fit(items, tagmodel.FitSettings(em_rounds=3))
    unsure = np.flatnonzero(items.latent)
    assert len(unsure) == per_tag
    _, slots, _ = items.labels(unsure)
    to_first = items.responsibility[slots][items.indices[slots] == 0]
    assert float(np.mean(to_first > 0.9)) >= 0.95
    # Tag 10 got (nearly) all of its 30 items, tag 11 (nearly) none of them.
    assert model.counts.tolist() == pytest.approx([31.0, 31.0, 31.0], abs=1.5)
    assert model.support()[0] == pytest.approx(30.0, abs=1.5)


def test_a_refit_continues_from_the_last_model_and_learns_a_new_tag(centres: np.ndarray) -> None:
    rng = np.random.default_rng(5)
    before = tagmodel.ItemsBuilder([10, 11])
    before.block(centres[:2], [(0, (10,), False), (1, (11,), False)], 1.0)
    before.block(
        np.vstack([_cluster(rng, c, 30) for c in centres[:2]]),
        [(row, (10 + row // 30,), False) for row in range(60)],
        1.0,
    )
    first = tagmodel.fit(before.build())
    assert 12 not in first.position
    grown = tagmodel.ItemsBuilder([10, 11, 12])
    grown.block(centres, [(row, (10 + row,), False) for row in range(3)], 1.0)
    grown.block(
        np.vstack([_cluster(rng, c, 30) for c in centres]),
        [(row, (10 + row // 30,), False) for row in range(90)],
        1.0,
    )
    settings = tagmodel.FitSettings(refit_steps=5)
    refit = tagmodel.fit(grown.build(), settings, previous=first)
    # Few steps from the last fit: the known tags keep (nearly) their weights…
    known = [refit.position[t] for t in (10, 11)]
    drift = np.abs(refit.weights[known] - first.weights[[first.position[t] for t in (10, 11)]])
    assert float(drift.max()) < 0.5
    # …and the new tag, started from its prototype, is recognised at once.
    questions = _cluster(np.random.default_rng(8), centres[2], 20)
    chosen = [refit.tag_ids[int(np.argmax(refit.logits(q)))] for q in questions]
    assert chosen.count(12) >= 18


def test_an_item_added_then_removed_leaves_the_prototypes_as_they_were(
    centres: np.ndarray,
) -> None:
    builder, _ = _builder(centres, 10)
    model = tagmodel.fit(builder.build())
    sums, counts = model.sums.copy(), model.counts.copy()
    vector = _cluster(np.random.default_rng(1), centres[0], 1)[0]
    contribution = model.contribution(vector, (10, 11), latent=True, weight=2.0)
    assert contribution is not None
    assert float(contribution.amounts.sum()) == pytest.approx(2.0)
    # Shared by closeness to the prototypes: most of it to tag 10, whose cluster it is in.
    assert contribution.amounts[0] > contribution.amounts[1]
    model.add(vector, contribution)
    assert model.counts[0] > counts[0]
    model.remove(vector, contribution)
    assert np.allclose(model.sums, sums, atol=1e-5) and np.allclose(model.counts, counts)
    assert model.contribution(vector, (99,), latent=False, weight=1.0) is None


# -- in the matcher: the model follows the knowledge base ---------------------------------


def _roaming_org(services: Services) -> None:
    with services.db.unit_of_work() as session:
        org = Org(session)
        org.tag("roaming")
        org.tag("refunds")
        org.person("ana", ("roaming", 4, True))
        org.person("ben", ("refunds", 4, True))
        lead = org.person("lea")
        lead.role = Role.ADMIN
        session.flush()
        for title in (
            "Using mobile data while travelling in another country",
            "The customer's phone has no signal after landing abroad",
        ):
            knowledge.add_entry(session, title, title, [org.tags["roaming"]], [org.people["ana"]])


def _model(matcher: Matcher) -> tagmodel.TagModel:
    assert matcher.cache.model is not None
    return matcher.cache.model.model


@needs_model
def test_the_tag_model_is_refitted_when_an_entry_is_edited_or_deleted(services: Services) -> None:
    _roaming_org(services)
    matcher = Matcher(load_encoder())
    rank(services, "roaming", matcher=matcher)
    fitted = _model(matcher)
    roaming = fitted.position[
        next(t for t, name in matcher.cache.people.names.items() if name == "roaming")  # type: ignore[union-attr]
    ]
    assert fitted.support()[roaming] == pytest.approx(2.0)
    encoder = load_encoder()
    assert encoder is not None
    new_text = "A customer wants to keep their number when moving to another network"
    (moved,) = encoder.encode([new_text])
    closeness_before = float(fitted.prototypes()[roaming] @ moved)
    with services.db.unit_of_work() as session:
        entry = session.query(KnowledgeEntry).order_by(KnowledgeEntry.id).first()
        assert entry is not None
        lea = by_key(session, "lea")
        assert isinstance(lea, Person)
        knowledge.edit(session, entry, lea, title=new_text, body=new_text, tags=None)
    rank(services, "roaming", matcher=matcher)
    edited = _model(matcher)
    assert edited is not fitted
    # The edited entry's new text is now part of what the tag's model knows.
    assert float(edited.prototypes()[roaming] @ moved) > closeness_before + 0.05
    assert edited.support()[roaming] == pytest.approx(2.0)
    with services.db.unit_of_work() as session:
        lea = by_key(session, "lea")
        for entry in session.query(KnowledgeEntry).all():
            knowledge.delete(session, entry, lea)
    rank(services, "roaming", matcher=matcher)
    deleted = _model(matcher)
    # Nothing left but the tag's name: no support, and the prototype is the name's vector.
    assert deleted.support()[roaming] == pytest.approx(0.0, abs=1e-5)
    (name,) = encoder.encode(["roaming"])
    assert float(deleted.prototypes()[roaming] @ name) == pytest.approx(1.0, abs=1e-4)


@needs_model
def test_a_large_index_refits_beside_the_questions_at_most_once_an_interval(
    services: Services,
) -> None:
    _roaming_org(services)
    matcher = Matcher(load_encoder(), reading=services.db.reading)
    matcher.cache.rebuild_beside_from = 0  # every index counts as large here
    rank(services, "roaming", matcher=matcher)
    matcher.cache.wait()
    first = _model(matcher)

    def edit(title: str) -> None:
        with services.db.unit_of_work() as session:
            entry = session.query(KnowledgeEntry).order_by(KnowledgeEntry.id).first()
            assert entry is not None
            knowledge.edit(
                session, entry, by_key(session, "lea"), title=title, body=title, tags=None
            )

    # Within the interval a change is searchable at once, and the model waits.
    matcher.cache.refit_every = 3600.0
    matcher.cache._refit_due = float("inf")
    edit("Keeping a number when moving to another network")
    rank(services, "roaming", matcher=matcher)
    matcher.cache.wait()
    assert _model(matcher) is first
    # Once it has passed, the next question refits on the side, from what changed.
    matcher.cache._refit_due = 0.0
    rank(services, "roaming", matcher=matcher)
    matcher.cache.wait()
    refitted = _model(matcher)
    assert refitted is not first
    assert matcher.cache.model is not None and matcher.cache.model.key[1] > 0
