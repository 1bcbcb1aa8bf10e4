"""A model of each tag, learned from everything known about its questions.

Fitted when the matching index is built, over stored sentence vectors:

- each tag's **name**, and a lead's description and example questions, labelled
  with the tag (so a tag nobody has answered yet still has a class);
- **knowledge entries**, labelled with their tags, or, when untagged, with the
  tags their authors hold: which of those an entry is about is learned
  (responsibilities from the tags' prototypes, a few EM rounds);
- **labelled examples** from use (a *Helpful* vote, a resolved huddle, a Message
  click that settled a question), labelled with a tag or with the person who
  helped, whose tags are then chosen among the same way.

Two parts:

- **prototypes**: per tag, the weighted sum of its items' vectors and their
  weight. These are exact sufficient statistics, kept per item as a
  `Contribution` that `add` adds and `remove` subtracts: the hook an incremental
  index (in-place add, edit as remove + add, delete with tombstones) calls for
  each changed entry, without refitting anything else;
- a **multinomial logistic regression** over all tags (numpy, minibatch Adam with
  a decaying step), started from the prototypes. `fit(..., previous=model)`
  continues from an earlier model's weights (new tags start from their
  prototype), so a refit after a few changes needs a few steps, not a full fit.

At a question, `logits` is one matrix-vector product over the tags.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

# The logistic regression's logits are SCALE times a dot product with unit vectors:
# Adam's step size then means the same for every vocabulary and data size.
SCALE = 10.0
SEED = 24  # the same items give the same model on every worker
CHUNK = 2_048  # items gathered at a time (EM rounds, sums)


@dataclass(frozen=True)
class FitSettings:
    """How a tag model is fitted (chosen by bench/routing.py's protocol)."""

    name_weight: float = 1.0  # a tag's name, as one item of its class
    lead_weight: float = 1.0  # a lead's description or example question
    example_weight: float = 1.0  # a question answered in use
    em_rounds: int = 3  # rounds choosing which of its candidate tags an item is about
    em_temperature: float = 0.05  # softmax temperature of that choice, in cosine
    steps: int = 300  # minibatch steps of a full fit
    refit_steps: int = 40  # …and of a refit continuing from an earlier model
    batch: int = 512
    learning_rate: float = 0.01
    l2: float = 1e-4
    init_scale: float = 20.0  # logits of the prototypes the regression starts from
    # At most this many logits computed per fit (steps × batch × tags): at 2,000 tags
    # and 100,000 entries a fit then stays within seconds, started from prototypes.
    work: float = 6e7
    # …and at most this many passes over the items: a small org's 90 items took 300
    # full-batch steps, up to 2 s on a busy 2-core machine, before its first answer.
    max_epochs: float = 50.0


@dataclass(frozen=True)
class Contribution:
    """What one item adds to the prototypes: weights over tag positions."""

    positions: np.ndarray  # int64
    amounts: np.ndarray  # float32, summing to the item's weight


class ItemsBuilder:
    """Collects training items block by block; the vectors are never copied."""

    def __init__(self, tag_ids: Sequence[int]) -> None:
        self.tag_ids = list(tag_ids)
        self.position = {tag_id: i for i, tag_id in enumerate(self.tag_ids)}
        self._blocks: list[np.ndarray] = []
        self._block: list[np.ndarray] = []
        self._row: list[np.ndarray] = []
        self._labels: list[list[int]] = []
        self._latent: list[bool] = []
        self._weight: list[float] = []

    def block(
        self,
        matrix: np.ndarray,
        labels: Iterable[tuple[int, Iterable[int], bool]],
        weight: float,
    ) -> None:
        """Items of one matrix: (row, tag ids, whether the tag is to be chosen among them).

        Tags outside the model and items left with none are skipped.
        """
        rows = []
        for row, tag_ids, latent in labels:
            positions = sorted({self.position[t] for t in tag_ids if t in self.position})
            if not positions or weight <= 0:
                continue
            rows.append(row)
            self._labels.append(positions)
            self._latent.append(latent and len(positions) > 1)
            self._weight.append(weight)
        if rows:
            self._block.append(np.full(len(rows), len(self._blocks), dtype=np.int32))
            self._row.append(np.asarray(rows, dtype=np.int64))
            self._blocks.append(matrix)

    def build(self) -> Items:
        counts = np.array([len(p) for p in self._labels], dtype=np.int64)
        indptr = np.zeros(len(counts) + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        indices = (
            np.fromiter((p for ps in self._labels for p in ps), dtype=np.int64, count=indptr[-1])
            if len(counts)
            else np.zeros(0, dtype=np.int64)
        )
        latent = np.asarray(self._latent, dtype=bool)
        # Explicit labels share the item equally; latent ones start so, then EM moves them.
        share = np.repeat(1.0 / np.maximum(counts, 1), counts).astype(np.float32)
        return Items(
            self.tag_ids,
            self._blocks,
            np.concatenate(self._block) if self._block else np.zeros(0, np.int32),
            np.concatenate(self._row) if self._row else np.zeros(0, np.int64),
            indptr,
            indices,
            latent,
            np.asarray(self._weight, dtype=np.float32),
            share,
        )


@dataclass
class Items:
    """Training items: vectors by (block, row), labels as CSR over tag positions."""

    tag_ids: list[int]
    blocks: list[np.ndarray]
    block: np.ndarray
    row: np.ndarray
    indptr: np.ndarray
    indices: np.ndarray
    latent: np.ndarray
    weight: np.ndarray
    responsibility: np.ndarray  # per label: the share of the item that tag gets

    def __len__(self) -> int:
        return len(self.weight)

    def vectors(self, items: np.ndarray) -> np.ndarray:
        dimensions = self.blocks[0].shape[1] if self.blocks else 0
        out = np.empty((len(items), dimensions), dtype=np.float32)
        blocks = self.block[items]
        for number, matrix in enumerate(self.blocks):
            chosen = np.flatnonzero(blocks == number)
            if len(chosen):
                out[chosen] = matrix[self.row[items[chosen]]]
        return out

    def labels(self, items: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For these items: the owner of each label (0..len-1), the label slots, counts."""
        starts, ends = self.indptr[items], self.indptr[items + 1]
        counts = ends - starts
        owner = np.repeat(np.arange(len(items)), counts)
        first = np.repeat(starts - np.cumsum(counts) + counts, counts)
        slots = first + np.arange(int(counts.sum()))
        return owner, slots, counts


@dataclass
class TagModel:
    tag_ids: list[int]
    weights: np.ndarray  # (tags, dimensions): logits = weights @ vector + bias
    bias: np.ndarray
    sums: np.ndarray  # (tags, dimensions): weighted sums of item vectors
    counts: np.ndarray  # (tags,): their weights
    settings: FitSettings = field(default_factory=FitSettings)
    items: int = 0
    position: dict[int, int] = field(init=False)

    def __post_init__(self) -> None:
        self.position = {tag_id: i for i, tag_id in enumerate(self.tag_ids)}

    def logits(self, vector: np.ndarray) -> np.ndarray:
        return self.weights @ vector + self.bias

    def support(self) -> np.ndarray:
        """Per tag, the weight of what it learned from beyond its own name."""
        return np.clip(self.counts - self.settings.name_weight, 0.0, None)

    def prototypes(self) -> np.ndarray:
        return _normalised(self.sums)

    # -- the incremental hook: exact, per item ---------------------------------------------

    def contribution(
        self, vector: np.ndarray, tag_ids: Iterable[int], latent: bool, weight: float
    ) -> Contribution | None:
        """What an item would add now: its weight over its tags (shared by closeness to
        their prototypes when latent, equally otherwise), or None if it has no tag here."""
        positions = np.array(sorted({self.position[t] for t in tag_ids if t in self.position}))
        if not len(positions):
            return None
        if latent and len(positions) > 1:
            closeness = self.prototypes()[positions] @ vector / self.settings.em_temperature
            shares = np.exp(closeness - closeness.max())
            shares /= shares.sum()
        else:
            shares = np.full(len(positions), 1.0 / len(positions))
        return Contribution(positions.astype(np.int64), (weight * shares).astype(np.float32))

    def add(self, vector: np.ndarray, contribution: Contribution) -> None:
        self.sums[contribution.positions] += contribution.amounts[:, None] * vector
        self.counts[contribution.positions] += contribution.amounts
        self.items += 1

    def remove(self, vector: np.ndarray, contribution: Contribution) -> None:
        """Undo `add` for an item deleted (or about to be re-added as edited)."""
        self.sums[contribution.positions] -= contribution.amounts[:, None] * vector
        self.counts[contribution.positions] -= contribution.amounts
        self.items -= 1


def _normalised(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return (matrix / np.clip(norms, 1e-12, None)).astype(np.float32)


def _segment_softmax(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    peak = np.maximum.reduceat(values, starts)
    shares = np.exp(values - np.repeat(peak, counts))
    return shares / np.repeat(np.add.reduceat(shares, starts), counts)


def _sums(items: Items, tags: int, dimensions: int) -> tuple[np.ndarray, np.ndarray]:
    sums = np.zeros((tags, dimensions), dtype=np.float32)
    counts = np.zeros(tags, dtype=np.float32)
    for start in range(0, len(items), CHUNK):
        chosen = np.arange(start, min(start + CHUNK, len(items)))
        vectors = items.vectors(chosen)
        owner, slots, _ = items.labels(chosen)
        amounts = items.responsibility[slots] * items.weight[chosen][owner]
        positions = items.indices[slots]
        order = np.argsort(positions, kind="stable")
        unique, first = np.unique(positions[order], return_index=True)
        added = np.add.reduceat(amounts[order, None] * vectors[owner[order]], first, axis=0)
        sums[unique] += added
        counts += np.bincount(positions, weights=amounts, minlength=tags).astype(np.float32)
    return sums, counts


def _choose_latent(items: Items, prototypes: np.ndarray, temperature: float) -> None:
    """Which of its candidate tags each latent item is about, by closeness (one EM round)."""
    latent = np.flatnonzero(items.latent)
    for start in range(0, len(latent), CHUNK):
        chosen = latent[start : start + CHUNK]
        vectors = items.vectors(chosen)
        owner, slots, counts = items.labels(chosen)
        closeness = np.einsum("nd,nd->n", vectors[owner], prototypes[items.indices[slots]])
        items.responsibility[slots] = _segment_softmax(closeness / temperature, counts)


def fit(
    items: Items,
    settings: FitSettings = FitSettings(),
    previous: TagModel | None = None,
) -> TagModel:
    """The tag model of these items; continuing from `previous` when given."""
    tags = len(items.tag_ids)
    dimensions = items.blocks[0].shape[1] if items.blocks else 0
    if tags == 0 or len(items) == 0:
        empty = np.zeros((tags, dimensions), dtype=np.float32)
        return TagModel(
            items.tag_ids,
            empty,
            np.zeros(tags, np.float32),
            empty.copy(),
            np.zeros(tags, np.float32),
        )
    start = None
    if previous is not None:
        start = _carried(previous, items.tag_ids)
    rounds = settings.em_rounds
    if start is not None and items.latent.any():
        # The earlier prototypes choose at once; one round settles the new items.
        _choose_latent(items, _normalised(start[2]), settings.em_temperature)
        rounds = min(rounds, 1)
    sums, counts = _sums(items, tags, dimensions)
    for _ in range(rounds if items.latent.any() else 0):
        _choose_latent(items, _normalised(sums), settings.em_temperature)
        sums, counts = _sums(items, tags, dimensions)
    prototypes = _normalised(sums)
    if start is not None:
        weights, bias = start[0] / SCALE, start[1].copy()
        unseen = ~start[3]
        weights[unseen] = prototypes[unseen] * settings.init_scale / SCALE
        steps = settings.refit_steps
    else:
        weights = prototypes * settings.init_scale / SCALE
        bias = np.zeros(tags, dtype=np.float32)
        steps = settings.steps
    batch = min(settings.batch, len(items))
    epochs = math.ceil(settings.max_epochs * len(items) / batch)
    steps = max(1, min(steps, epochs, int(settings.work / (batch * tags))))
    weights, bias = _regression(items, weights, bias, settings, steps, batch)
    return TagModel(items.tag_ids, weights * SCALE, bias, sums, counts, settings, len(items))


def _carried(
    previous: TagModel, tag_ids: list[int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """The earlier model's weights, bias and sums in this column order, and which it had."""
    known = np.array([t in previous.position for t in tag_ids], dtype=bool)
    if not known.any():
        return None
    take = np.array([previous.position.get(t, 0) for t in tag_ids])
    weights = np.where(known[:, None], previous.weights[take], 0).astype(np.float32)
    bias = np.where(known, previous.bias[take], 0).astype(np.float32)
    sums = np.where(known[:, None], previous.sums[take], 0).astype(np.float32)
    return weights, bias, sums, known


def _regression(
    items: Items,
    weights: np.ndarray,
    bias: np.ndarray,
    settings: FitSettings,
    steps: int,
    batch: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Minibatch Adam on the weighted cross-entropy against the items' label shares."""
    rng = np.random.default_rng(SEED)
    weights, bias = weights.astype(np.float32), bias.astype(np.float32)
    moment, second = np.zeros_like(weights), np.zeros_like(weights)
    bias_moment, bias_second = np.zeros_like(bias), np.zeros_like(bias)
    mean_weight = float(items.weight.mean())
    order, place = rng.permutation(len(items)), 0
    target = np.zeros((batch, len(bias)), dtype=np.float32)
    for step in range(1, steps + 1):
        if place + batch > len(order):
            order, place = rng.permutation(len(items)), 0
        chosen = order[place : place + batch]
        place += batch
        vectors = items.vectors(chosen)
        owner, slots, _ = items.labels(chosen)
        target[:] = 0.0
        target[owner, items.indices[slots]] = items.responsibility[slots]
        logits = SCALE * (vectors @ weights.T) + bias
        logits -= logits.max(axis=1, keepdims=True)
        np.exp(logits, out=logits)
        logits /= logits.sum(axis=1, keepdims=True)
        logits -= target
        logits *= (items.weight[chosen] / (mean_weight * len(chosen)))[:, None]
        gradient = SCALE * (logits.T @ vectors) + settings.l2 * weights
        bias_gradient = logits.sum(axis=0)
        rate = settings.learning_rate * (1 - (step - 1) / steps)
        for value, grad, first, raw in (
            (weights, gradient, moment, second),
            (bias, bias_gradient, bias_moment, bias_second),
        ):
            first *= 0.9
            first += 0.1 * grad
            raw *= 0.999
            raw += 0.001 * grad * grad
            value -= rate * (first / (1 - 0.9**step)) / (np.sqrt(raw / (1 - 0.999**step)) + 1e-8)
    return weights, bias
