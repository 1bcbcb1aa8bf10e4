"""Who knows about X: candidate signals, one ranking function, availability after relevance.

Signals, each explained in the reason it leaves on a card:
- **named**: a tag name or alias in the question, exactly, as a plural or with a
  typo (`lexical.TermIndex`: an inverted index over the tag vocabulary, rapidfuzz
  for typos; never a scan over people). A parent tag lends its children part of
  its strength, a child lends its parent less.
- **semantic**: cosine similarity between the question and each tag name
  (`embeddings`, when the `semantic` extra is installed), ranked on tag vectors
  that tell near-duplicate tags apart and discount tags close to many others
  (`vectors.distinct_tags`); how sure we are still reads the plain cosine.
- **evidence** (document-centric expert finding): knowledge entries close to the
  question vote for the people who wrote them — the nearest neighbours by
  vector, weighted by a softmax with a low temperature, plus full-text (BM25)
  hits. A person's votes also count for every tag they hold, so colleagues who
  share a skill share the evidence of their answers.

`rank` fuses them with the named `WEIGHTS` into a relevance per tag and per
person, scaled by proficiency (level, verification), diversified so that an
uncertain question shows holders of its next-best topic too, then ordered by
availability within bands of similar relevance. Nobody is hidden for being
away; the asker is never suggested.
"""

from __future__ import annotations

import heapq
from collections import Counter, defaultdict, deque
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from bot import messages
from bot.db.models import (
    Huddle,
    HuddleParticipant,
    HuddleState,
    KnowledgeEntry,
    Person,
    Presence,
    QueryLog,
    Skill,
    Status,
    Team,
)
from bot.matching import vectors
from bot.matching.embeddings import QueryVectors
from bot.matching.index import (
    Holding,
    IndexCache,
    KnowledgeIndex,
    ModelIndex,
    PeopleIndex,
    pair,
)
from bot.matching.tagmodel import FitSettings
from bot.services import knowledge as knowledge_service
from bot.services import presence
from bot.text import terms
from bot.types import Article, PersonCard, TagMatch

if TYPE_CHECKING:
    from bot.matching.embeddings import Encoder

WEIGHTS = {
    "named": 0.3,  # a tag named in the question: 1 exact, less for an alias or a typo
    # The same beside sentence vectors, which already rate a named tag close, and
    # which a common word in a tag name ("balance") would otherwise outvote.
    # 0.01 is a tie-break: at 0.05 a tags-only routing set lost a point of hit@1.
    "named_beside_semantic": 0.01,
    "semantic": 0.5,  # question ~ tag name, above SEMANTIC_FLOOR
    # Share of the answer evidence held by the tag's holders. 0.5, chosen on each half of
    # bench/routing.py's tags and better on the other (hit@1 .950 -> .952, .961 -> .964).
    "evidence": 0.5,
    "own_evidence": 1.0,  # share of the answer evidence a person wrote themself
    "fulltext": 1.0,  # full-text votes, relative to nearest-neighbour votes
}
PARENT_SHARE = 0.6  # a child tag's strength when the question names its parent
CHILD_SHARE = 0.4  # a parent tag's strength when the question names a child
SEMANTIC_FLOOR = 0.3  # cosine below which a tag name is unrelated…
# …unless it is within this of the closest tag: a question whose every tag scores
# low still reaches the holders of the nearest ones (flagged not confident).
SEMANTIC_MARGIN = 0.1
# Ranking by tag name, from the tag vocabulary alone (`vectors.distinct_tags`): each
# tag vector loses this share of its nearest other tag, and a tag loses this much
# per unit of its mean cosine to its HUB_NEIGHBOURS nearest tags above the average.
NEIGHBOUR_SHARE = 0.2
HUB_NEIGHBOURS = 10
HUB_DISCOUNT = 0.2
NEIGHBOURS = 40  # knowledge entries that vote
TEMPERATURE = 0.1  # softmax temperature of neighbour votes: low = the closest decide
FULLTEXT_HITS = 40
DIVERSITY = 0.3  # each earlier pick from the same topic multiplies a candidate by this
CLEAR_LEAD = 2.0  # a topic this far ahead of the next is not hedged with others
FAIRNESS = 0.05  # each time someone was the first suggestion in the last hour
HUDDLE_LOAD = 0.2  # each open huddle someone is in
RECENT = timedelta(hours=1)
PROFICIENCY = 0.02  # level 5 over level 1; half as much again for a lead's verification
# Freshness: a self-declared skill with no answer on its topic (and not declared again)
# for `Matcher.stale_after` counts this share of its strength: below every fresh holder
# of that topic, whatever their level (proficiency spans 3 %).
STALE_SHARE = 0.9
STALE_AFTER = timedelta(days=180)
TOP_BAND = 0.3  # share of the best relevance that puts someone in the top band
# A question that is a tag's name, and nothing more, is about that tag: its holders come
# before everyone else, whatever neighbouring tags or answers say. Its relevance is
# raised this far above what anyone else could score (below TOP_BAND of it).
EXACT_LEAD = 1.1
SHORTLIST = 6  # candidates looked at closely (presence, load), per expert shown

# When to say "I am not sure" (cosines of all-MiniLM-L6-v2; see bench/routing.py).
CONFIDENT_NAMED = 0.85
# A tag name close in meaning is the only semantic evidence without a knowledge
# base; with one, close answers must back it up or the tag must be much closer.
CONFIDENT_TAG_SIMILARITY = 0.30
# The protocol's bars (each half chose 0.56; 0.67 and 0.69 for the neighbours).
CONFIDENT_TAG_SIMILARITY_WITH_KNOWLEDGE = 0.56
CONFIDENT_NEIGHBOURS = 0.68  # mean cosine of the five nearest entries
# The tag model's best logit: the halves chose 6.9 (fitted with l2 1e-3) and 9.75 (with
# the default 1e-4); on both held-out halves it flagged more out-of-scope questions with
# fewer in-scope ones. With the defaults: 78 % / 79 % of out-of-scope questions flagged
# with knowledge, 3.1 % / 3.6 % of in-scope ones (without it, 13 % / 19 %).
CONFIDENT_MODEL = 9.75
CONFIDENT_FULLTEXT = 0.6  # share of the question's words in the best entry (no vectors)
ARTICLE_SIMILARITY = 0.45
ARTICLE_COVERAGE = 0.5


@dataclass(frozen=True)
class Tuning:
    """The weights, floors and temperatures bench/routing.py's protocol chooses.

    Each is chosen on the questions of one half of a routing set's tags and
    checked on the other half, both ways; the defaults are the protocol's choice
    and stay only where they helped on both held-out halves.
    """

    semantic: float = WEIGHTS["semantic"]
    evidence: float = WEIGHTS["evidence"]
    # The tag model (tagmodel.py): its posterior over tags, at this temperature (in
    # logits), is a signal of this weight for each tag it gives at least `model_floor`.
    # Both halves chose 2.0 and 2.0; held out, hit@1 with knowledge .941 -> .960 and
    # .923 -> .952, after 5 marks per tag .722 -> .925 and .680 -> .899; tags only,
    # cold, .721 -> .728 on one half and .682 -> .674 on the other.
    model: float = 2.0
    model_temperature: float = 2.0
    model_floor: float = 0.01
    # A tag's model counts as much as it has learned: n / (n + model_support), n the
    # weight of its items beyond its name (knowledge, examples, a lead's description).
    # From its name alone the model knows no more than the tag name's vector. Both
    # halves kept 0 (searched 0, 1, 3, 10: none moved the objective by .0005), but held
    # out a model of names alone helped tags only, cold, on one half (+.007) and not on
    # the other (-.008), and in a small org it outvoted the name a question typed
    # ("chargbacks") and the closest tag in meaning: 1, so it speaks once it has learned.
    model_support: float = 1.0
    # A person's other topics the question may be about add this share of their
    # relevance: holding two of the likely topics makes one a better bet.
    # Both halves chose 0.5, but held out it helped by a tenth of a point with knowledge,
    # by 1.2 / 0.2 after learning and by +1.7 / -0.1 tags only, cold: not on both halves
    # everywhere, and it put a level-1 holder of a second, weakly likely topic above a
    # verified level-5 specialist. Off.
    person_sum: float = 0.0
    neighbour_temperature: float = TEMPERATURE
    confident_named: float = CONFIDENT_NAMED
    confident_tag_similarity: float = CONFIDENT_TAG_SIMILARITY
    confident_tag_similarity_with_knowledge: float = CONFIDENT_TAG_SIMILARITY_WITH_KNOWLEDGE
    confident_neighbours: float = CONFIDENT_NEIGHBOURS
    # The tag model's best logit above which a question is within what it knows.
    confident_model: float = CONFIDENT_MODEL
    fit: FitSettings = field(default_factory=FitSettings)


EXPLAINED_FIRST = ("named", "alias", "typo", "parent", "child")


class TagSignal(NamedTuple):
    """A topic the question touches (a plain tuple: a question makes a hundred)."""

    tag_id: int
    name: str
    relevance: float
    how: str  # named, alias, typo, parent, child, similar, evidence


@dataclass
class Ranking:
    query: str
    experts: list[PersonCard]
    articles: list[Article]
    tags: list[TagSignal]
    confident: bool
    nearest_tags: list[str] = field(default_factory=list)
    # What `confident` was decided from (tag named, closest tag name, nearest answers,
    # the tag model's best logit), for the bench to choose the bars on.
    certainty: dict[str, float] = field(default_factory=dict)


@dataclass
class _Evidence:
    entries: dict[int, float]  # entry id → vote weight (sums to 1)
    similarity: dict[int, float]  # entry id → cosine, for the nearest neighbours
    neighbour_mean: float = 0.0


class Matcher:
    """Ranks colleagues for a question; one per worker, holding its index cache."""

    def __init__(
        self,
        encoder: Encoder | None,
        reading: Callable[[], AbstractContextManager[Session]] | None = None,
        stale_after: timedelta = STALE_AFTER,
        tuning: Tuning | None = None,
    ) -> None:
        """`reading`: read-only sessions, for rebuilding a large index on the side;
        `stale_after`: how long a self-declared skill keeps its strength without evidence."""
        self.encoder = encoder
        self.tuning = tuning or Tuning()
        self.cache = IndexCache(encoder, reading, fit=self.tuning.fit)
        self.stale_after = stale_after
        # Questions' vectors, kept a few minutes: asked again, a question costs no model run.
        self.queries = QueryVectors(encoder) if encoder is not None else None

    def prepare(self, session: Session, queries: list[str], now: datetime) -> None:
        """Get ready to rank these questions, soon, one after another: their vectors in
        one run of the model, and their nearest knowledge entries in one matrix
        product (a batch costs less per question than one at a time). `rank` then
        uses them, unless the index changed in between."""
        if self.queries is None or not queries:
            return
        _, knowledge = self.cache.get(session, now)
        batch = self.queries.vectors(queries)
        if knowledge.store is not None and len(knowledge.store):
            knowledge.store.prepare(batch, NEIGHBOURS)

    def rank(
        self,
        session: Session,
        query: str,
        now: datetime,
        *,
        requester_id: int | None = None,
        limit: int = 5,
        article_limit: int = 3,
    ) -> Ranking:
        tuning = self.tuning
        people, knowledge = self.cache.get(session, now)
        model = self.cache.model
        vector = self.queries.vector(query) if self.queries is not None else None
        evidence = _evidence(query, vector, knowledge, tuning)
        votes = _person_votes(evidence, knowledge)
        signals, named, similar, model_best = _tag_signals(
            query, vector, people, evidence, knowledge, votes, model, tuning
        )
        idle = _Idle(knowledge, now, self.stale_after)
        scores, best_tag = _person_scores(
            people, signals, votes, requester_id, limit * SHORTLIST, tuning.person_sum, idle
        )
        shortlist = sorted(scores, key=lambda p: -scores[p])[: limit * SHORTLIST]
        rows = _people(session, shortlist, now)
        load = _recent_load(rows)
        fair = {p: scores[p] / (1 + load[p]) for p in rows}
        ranked_tags = sorted(signals.values(), key=lambda s: -s.relevance)
        clear = (
            len(ranked_tags) < 2
            or ranked_tags[0].relevance >= CLEAR_LEAD * ranked_tags[1].relevance
        )
        # The whole shortlist is ordered: cutting it here would let diversity and load
        # drop a strong expert before the top band is chosen in `_cards`.
        order = _diversify(fair, best_tag, len(fair), 1.0 if clear else DIVERSITY)
        cards = _cards(session, order, rows, scores, people, signals, votes, best_tag, now, limit)
        cards = _basis(cards, best_tag, signals, votes, evidence, knowledge, idle)
        articles, coverage = _articles(session, query, evidence, people, knowledge, article_limit)
        if vector is not None:
            tag_bar = (
                tuning.confident_tag_similarity_with_knowledge
                if evidence.similarity
                else tuning.confident_tag_similarity
            )
            sure = (
                similar >= tag_bar
                or evidence.neighbour_mean >= tuning.confident_neighbours
                or model_best >= tuning.confident_model
            )
        else:
            sure = coverage >= CONFIDENT_FULLTEXT
        confident = bool(cards) and (named >= tuning.confident_named or sure)
        # Topics to suggest: ones the question names or resembles, not mere evidence.
        nearest = (
            []
            if confident
            else [s.name for s in ranked_tags if s.how not in {"evidence", "parent", "child"}][:3]
        )
        certainty = {
            "named": named,
            "similar": similar,
            "neighbours": evidence.neighbour_mean,
            "knowledge": float(bool(evidence.similarity)),
            "model": model_best,
            "coverage": coverage,
        }
        return Ranking(query, cards, articles, ranked_tags, confident, nearest, certainty)


def _evidence(
    query: str, vector: np.ndarray | None, knowledge: KnowledgeIndex, tuning: Tuning
) -> _Evidence:
    entries: dict[int, float] = defaultdict(float)
    similarity: dict[int, float] = {}
    neighbour_mean = 0.0
    if vector is not None and knowledge.store is not None and len(knowledge.store):
        ids, sims = knowledge.nearest(vector, NEIGHBOURS)
        weights = np.exp((sims - sims[0]) / tuning.neighbour_temperature)
        weights /= weights.sum()
        for entry_id, sim, weight in zip(ids.tolist(), sims, weights, strict=True):
            entries[entry_id] += float(weight)
            similarity[entry_id] = float(sim)
        neighbour_mean = float(sims[:5].mean())
    fulltext = dict(knowledge.fulltext.search(query, FULLTEXT_HITS))
    total = sum(fulltext.values())
    share = WEIGHTS["fulltext"] if entries else 1.0
    for entry_id, score in fulltext.items():
        entries[entry_id] += share * score / total
    norm = sum(entries.values()) or 1.0
    return _Evidence({e: w / norm for e, w in entries.items()}, similarity, neighbour_mean)


def _person_votes(evidence: _Evidence, knowledge: KnowledgeIndex) -> dict[int, float]:
    votes: dict[int, float] = defaultdict(float)
    for entry_id, weight in evidence.entries.items():
        authors = knowledge.authors.get(entry_id, ())
        fresh = knowledge.freshness.get(entry_id, 1.0)
        for person_id in authors:
            votes[person_id] += weight * fresh / len(authors)
    return votes


def _tag_signals(
    query: str,
    vector: np.ndarray | None,
    people: PeopleIndex,
    evidence: _Evidence,
    knowledge: KnowledgeIndex,
    votes: dict[int, float],
    model: ModelIndex | None,
    tuning: Tuning,
) -> tuple[dict[int, TagSignal], float, float, float]:
    """Each tag's relevance, the strongest tag named, the closest tag in meaning, and
    the tag model's best logit (-inf without one)."""
    parts: dict[int, dict[str, float]] = defaultdict(dict)
    named_max = similarity_max = 0.0
    model_best = float("-inf")

    def offer(tag_id: int, how: str, value: float) -> None:
        if value > parts[tag_id].get(how, 0.0):
            parts[tag_id][how] = value

    semantic = vector is not None and people.tag_vectors is not None
    named_weight = WEIGHTS["named_beside_semantic" if semantic else "named"]
    for tag_id, (strength, alias) in people.terms.match(query).items():
        how = "alias" if alias else "named" if strength >= 1.0 else "typo"
        offer(tag_id, how, named_weight * strength)
        named_max = max(named_max, strength)
        for child in people.children.get(tag_id, ()):
            offer(child, "parent", named_weight * strength * PARENT_SHARE)
        parent = people.parents.get(tag_id)
        if parent is not None:
            offer(parent, "child", named_weight * strength * CHILD_SHARE)
    if semantic and len(people.tag_ids):
        similarity_max = float((people.tag_vectors @ vector).max())
        distinct, hubness = _distinct_tags(people)
        sims = distinct @ vector - HUB_DISCOUNT * hubness
        floor = min(SEMANTIC_FLOOR, float(sims.max()) - SEMANTIC_MARGIN)
        # Only the few tags above the floor, not a Python loop over the vocabulary.
        for position in np.flatnonzero(sims > floor):
            value = tuning.semantic * (float(sims[position]) - floor)
            offer(people.tag_ids[position], "similar", value)
    if vector is not None and model is not None and len(model.model.tag_ids):
        logits = model.model.logits(vector)
        model_best = float(logits.max())
        if tuning.model > 0.0:
            posterior = np.exp((logits - model_best) / tuning.model_temperature)
            posterior /= posterior.sum()
            # At most 1 / floor tags: the posterior sums to one.
            chosen = np.flatnonzero(posterior >= tuning.model_floor)
            trust = np.ones(len(chosen))
            if tuning.model_support > 0.0:
                support = model.support[chosen]
                trust = support / (support + tuning.model_support)
            for position, share in zip(chosen, trust, strict=True):
                if share > 0.0:
                    offer(
                        model.model.tag_ids[position],
                        "model",
                        tuning.model * float(posterior[position] * share),
                    )
    tag_evidence: dict[int, float] = defaultdict(float)
    for person_id, vote in votes.items():
        for holding in people.held.get(person_id, ()):
            tag_evidence[holding.tag_id] += vote
    for entry_id, weight in evidence.entries.items():
        for tag_id in knowledge.tags.get(entry_id, ()):
            tag_evidence[tag_id] += weight
    weight = tuning.evidence
    for tag_id, value in tag_evidence.items():  # one offer each: no max to take
        if value > 0.0:
            parts[tag_id]["evidence"] = weight * value
    signals = {}
    names = people.names
    for tag_id, contributions in parts.items():
        if tag_id not in names:
            continue
        if len(contributions) == 1:
            ((how, relevance),) = contributions.items()
        else:
            relevance = sum(contributions.values())
            # Explain by what the asker can see first: the name they typed, then meaning.
            how = next((h for h in EXPLAINED_FIRST if h in contributions), "")
            how = how or max(contributions, key=lambda h: contributions[h])
        signals[tag_id] = TagSignal(tag_id, names[tag_id], relevance, how)
    exact = people.terms.whole(query)
    if exact in signals:
        _lead_exact(signals, exact, votes)
    return signals, named_max, similarity_max, model_best


def _lead_exact(signals: dict[int, TagSignal], exact: int, votes: dict[int, float]) -> None:
    """The question is the tag `exact`'s name: raise it so that its least holder scores
    more than anyone else could (another tag at its best proficiency, plus the most
    answer evidence anyone has) over TOP_BAND, leaving them out of the top band."""
    others = max((s.relevance for t, s in signals.items() if t != exact), default=0.0)
    ceiling = proficiency(Holding(0, 0, 5, True))
    best_other = others * ceiling + WEIGHTS["own_evidence"] * max(votes.values(), default=0.0)
    wanted = EXACT_LEAD * best_other / TOP_BAND
    if signals[exact].relevance < wanted:
        signals[exact] = signals[exact]._replace(relevance=wanted)


def _distinct_tags(people: PeopleIndex) -> tuple[np.ndarray, np.ndarray]:
    """The tag vectors the ranking compares with, computed once per index load."""
    if people.distinct_vectors is None or people.hubness is None:
        assert people.tag_vectors is not None
        people.distinct_vectors, people.hubness = vectors.distinct_tags(
            people.tag_vectors, NEIGHBOUR_SHARE, HUB_NEIGHBOURS
        )
    return people.distinct_vectors, people.hubness


@dataclass(frozen=True, slots=True)
class _Idle:
    """How long self-declared skills have gone without evidence, as of `now`."""

    knowledge: KnowledgeIndex
    now: datetime
    after: timedelta

    def days(self, holding: Holding) -> int | None:
        """Days since the skill was declared or last answered on, once past `after`."""
        if holding.verified or holding.since is None:
            return None
        latest = holding.since.timestamp()
        answered = self.knowledge.credited.get(pair(holding.person_id, holding.tag_id), 0.0)
        idle = timedelta(seconds=self.now.timestamp() - max(latest, answered))
        return idle.days if idle > self.after else None


def proficiency(holding: Holding) -> float:
    """1.00 (level 1, self-declared) … 1.03 (level 5, verified).

    Small on purpose: it orders the holders of one topic, but must not make a
    strong holder of a less relevant topic outrank the right one.
    """
    return 1 + PROFICIENCY * ((holding.level - 1) / 4 + holding.verified / 2)


def _person_scores(
    people: PeopleIndex,
    signals: dict[int, TagSignal],
    votes: dict[int, float],
    requester_id: int | None,
    wanted: int,
    person_sum: float = 0.0,
    idle: _Idle | None = None,
) -> tuple[dict[int, float], dict[int, Holding | None]]:
    """Scores of the candidates who may be among the `wanted` best, in id order.

    The candidates are the people who hold a signalled topic or wrote evidence.
    Those outside the `wanted` best's reach score below all of them, so leaving
    them out changes neither who is shortlisted nor in what order; it keeps the
    cost from growing with the number of people who hold a remotely relevant topic.
    """
    by_relevance = sorted(signals.values(), key=lambda s: -s.relevance)
    # Proficiency is at least 1, so once the holders of the most relevant topics
    # make `wanted` people, the wanted-th best score is at least `floor`.
    floor, counted = 0.0, set()
    for signal in by_relevance:
        counted.update(people.holders.get(signal.tag_id, ()))
        counted.discard(requester_id)
        if len(counted) >= wanted:
            floor = signal.relevance * STALE_SHARE  # some of them may be stale
            break
    # Levels are 1..5 (a database constraint): nobody beats a verified level 5; and
    # each other topic someone holds adds at most `person_sum` of the best one's.
    ceiling = proficiency(Holding(0, 0, 5, True))
    ceiling *= 1 + person_sum * max(people.most_held - 1, 0)
    within = set(votes)
    for signal in by_relevance:
        if signal.relevance * ceiling < floor:
            break
        within.update(people.holders.get(signal.tag_id, ()))
    within.discard(requester_id)  # type: ignore[arg-type]
    scores: dict[int, float] = {}
    best_tag: dict[int, Holding | None] = {}
    relevance = {tag_id: signal.relevance for tag_id, signal in signals.items()}
    held, own = people.held, WEIGHTS["own_evidence"]
    for person_id in sorted(within):
        best, best_value, total = None, 0.0, 0.0
        for holding in held.get(person_id, ()):
            value = relevance.get(holding.tag_id)
            if value is not None:
                value *= proficiency(holding)
                if idle is not None and not holding.verified and idle.days(holding) is not None:
                    value *= STALE_SHARE
                total += value
                if value > best_value:
                    best, best_value = holding, value
        scores[person_id] = (
            best_value + person_sum * (total - best_value) + own * votes.get(person_id, 0.0)
        )
        best_tag[person_id] = best
    return scores, best_tag


def _diversify(
    scores: dict[int, float], best_tag: dict[int, Holding | None], count: int, diversity: float
) -> list[int]:
    """Greedy picks, each discounted by how many earlier picks share its best topic.

    Everyone sharing a topic has the same discount, so only each topic's best
    remaining person can be the next pick: a heap of those, one per topic, each
    pushed again with its new discount when its topic is picked from.
    """
    pool = sorted(scores, key=lambda p: -scores[p])  # ties: the scores' own order
    queues: dict[int, deque[tuple[int, int]]] = defaultdict(deque)  # topic → (place, person)
    for place, person in enumerate(pool):
        holding = best_tag[person]
        queues[holding.tag_id if holding else -person].append((place, person))
    # (-discounted score, place in the pool, topic): the first best in the pool wins.
    heads = [(-scores[q[0][1]], q[0][0], topic) for topic, q in queues.items()]
    heapq.heapify(heads)
    taken: Counter[int] = Counter()
    order: list[int] = []
    while heads and len(order) < count:
        _, _, topic = heapq.heappop(heads)
        _, person = queues[topic].popleft()
        order.append(person)
        taken[topic] += 1
        if queues[topic]:
            place, following = queues[topic][0]
            discounted = scores[following] * diversity ** taken[topic]
            heapq.heappush(heads, (-discounted, place, topic))
    return order


# The queries of every question, built once (as plain Core: ORM loading and
# statement construction cost more than the rest of the ranking).
_person, _team, _status = Person.__table__, Team.__table__, Presence.__table__
_log, _skill, _verifier = QueryLog.__table__, Skill.__table__, Person.__table__.alias("verifier")
_huddle, _participant, _entry = (
    Huddle.__table__,
    HuddleParticipant.__table__,
    KnowledgeEntry.__table__,
)
_FIRSTS = (
    select(func.count())
    .where(_log.c.first_suggested == _person.c.key, _log.c.created_at > bindparam("since"))
    .scalar_subquery()
)
_OPEN_HUDDLES = (
    select(func.count())
    .select_from(_participant.join(_huddle, _huddle.c.id == _participant.c.huddle_id))
    .where(_participant.c.person_id == _person.c.id, _huddle.c.state == HuddleState.OPEN)
    .scalar_subquery()
)
_SHORTLIST = (
    select(
        _person.c.id,
        _person.c.key,
        _person.c.display_name,
        _team.c.name,
        _person.c.timezone,
        _person.c.work_start_min,
        _person.c.work_end_min,
        _person.c.work_days,
        _status.c.status,
        _status.c.until,
        _FIRSTS,
        _OPEN_HUDDLES,
    )
    .select_from(
        _person.outerjoin(_team, _team.c.id == _person.c.team_id).outerjoin(
            _status, _status.c.person_id == _person.c.id
        )
    )
    .where(_person.c.id.in_(bindparam("ids", expanding=True)), _person.c.deleted_at.is_(None))
)
_VERIFIERS = (
    select(_skill.c.person_id, _skill.c.tag_id, _verifier.c.display_name)
    .join(_verifier, _verifier.c.id == _skill.c.verified_by_id)
    .where(_skill.c.person_id.in_(bindparam("ids", expanding=True)))
)
_ENTRIES = select(_entry.c.id, _entry.c.title, _entry.c.body, _entry.c.helpful_count).where(
    _entry.c.id.in_(bindparam("ids", expanding=True))
)


def _recent_load(people: dict[int, Candidate]) -> dict[int, float]:
    """How much each person has been asked lately: first suggestions and open huddles."""
    return {
        person_id: FAIRNESS * candidate.first_suggested + HUDDLE_LOAD * candidate.open_huddles
        for person_id, candidate in people.items()
    }


def _reason(
    holding: Holding | None,
    signal: TagSignal | None,
    verifier: str | None,
    wrote: float,
    idle_days: int | None = None,
) -> str:
    parts = []
    if holding is not None and signal is not None:
        if verifier:
            vouched = messages.REASON_VERIFIED_BY.format(name=verifier)
        elif holding.verified:
            vouched = messages.REASON_VERIFIED
        elif idle_days is not None:
            vouched = messages.REASON_SELF_DECLARED_STALE.format(days=idle_days)
        else:
            vouched = messages.REASON_SELF_DECLARED
        parts.append(
            messages.REASON_SKILL.format(
                tag=signal.name,
                level=holding.level,
                vouched=vouched,
                via=messages.REASON_VIA.get(signal.how, ""),
            )
        )
    if wrote >= 0.05:
        parts.append(messages.REASON_WROTE)
    return "; ".join(parts)


@dataclass(frozen=True, slots=True)
class _Status:
    status: Status
    until: datetime | None


@dataclass(frozen=True, slots=True)
class Candidate:
    """What a card shows of a shortlisted person, read fresh at every question."""

    id: int
    key: str
    display_name: str
    team: str | None
    timezone: str
    work_start_min: int
    work_end_min: int
    work_days: str
    presence: _Status | None
    first_suggested: int  # times put first lately (RECENT)
    open_huddles: int


def _people(session: Session, ids: list[int], now: datetime) -> dict[int, Candidate]:
    """The shortlist, in one query of plain rows: loading them as ORM objects, with
    their presence and team, cost more than the rest of the ranking; and their recent
    load in the same query, which as two more queries cost a tenth of a question."""
    if not ids:
        return {}
    rows = session.execute(_SHORTLIST, {"ids": ids, "since": now - RECENT}).all()
    return {
        row[0]: Candidate(
            *row[:8], _Status(row[8], row[9]) if row[8] is not None else None, row[10], row[11]
        )
        for row in rows
    }


def _verifiers(session: Session, ids: list[int]) -> dict[tuple[int, int], str]:
    """(person id, tag id) → the name of the lead who verified that skill."""
    return {
        (person_id, tag_id): name
        for person_id, tag_id, name in session.execute(_VERIFIERS, {"ids": ids})
    }


def _cards(
    session: Session,
    order: list[int],
    rows: dict[int, Candidate],
    scores: dict[int, float],
    people: PeopleIndex,
    signals: dict[int, TagSignal],
    votes: dict[int, float],
    best_tag: dict[int, Holding | None],
    now: datetime,
    limit: int,
) -> list[PersonCard]:
    if not order:
        return []
    best = max(scores[p] for p in order) or 1.0
    placed = []
    for rank, person_id in enumerate(order):
        tier = presence.TIERS[presence.status(rows[person_id], now)]
        # The top band by relevance (never lowered by fairness or diversity, so
        # nobody strong is buried); within a band, availability, then the picks.
        band = scores[person_id] >= TOP_BAND * best
        placed.append((not band, tier, rank, person_id))
    placed.sort()
    shown = [person_id for *_, person_id in placed[:limit]]
    verifiers = _verifiers(session, shown)
    cards = []
    for person_id in shown:
        person, holding = rows[person_id], best_tag[person_id]
        view = presence.current(person, now)  # with local times: for the few shown
        matched = [h for h in people.held.get(person_id, ()) if h.tag_id in signals]
        matched.sort(key=lambda h: -signals[h.tag_id].relevance)
        signal = signals.get(holding.tag_id) if holding else None
        verifier = verifiers.get((person_id, holding.tag_id)) if holding else None
        cards.append(
            PersonCard(
                person_id=person_id,
                key=person.key,
                name=person.display_name,
                team=person.team,
                presence=view,
                tags=tuple(
                    TagMatch(people.names[h.tag_id], h.level, h.verified) for h in matched[:3]
                ),
                reason=_reason(holding, signal, verifier, votes.get(person_id, 0.0)),
                score=round(scores[person_id], 4),
            )
        )
    return cards


def _basis(
    cards: list[PersonCard],
    best_tag: dict[int, Holding | None],
    signals: dict[int, TagSignal],
    votes: dict[int, float],
    evidence: _Evidence,
    knowledge: KnowledgeIndex,
    idle: _Idle,
) -> list[PersonCard]:
    """What each card's reason rests on: a verified or a self-declared skill on the topic
    (one gone without evidence says so), or their own answers, earned without the tag (a
    skill that matches only through answers, theirs among them, is not the topic's)."""
    explained = []
    for card in cards:
        holding = best_tag.get(card.person_id)
        signal = signals.get(holding.tag_id) if holding is not None else None
        wrote = votes.get(card.person_id, 0.0)
        by_answers = signal is not None and signal.how == "evidence" and wrote >= 0.05
        if holding is not None and signal is not None and not by_answers:
            basis = "verified" if holding.verified else "self-declared"
            days = idle.days(holding)
            if days is not None:
                card = replace(card, reason=_reason(holding, signal, None, wrote, days))
        elif wrote >= 0.05:
            basis = "earned"
            tag = _earned_tag(card.person_id, signals, evidence, knowledge)
            reason = (
                messages.REASON_EARNED.format(tag=tag) if tag else messages.REASON_EARNED_UNTAGGED
            )
            card = replace(card, reason=reason)
        else:
            basis = ""
        explained.append(replace(card, basis=basis))
    return explained


def _earned_tag(
    person_id: int, signals: dict[int, TagSignal], evidence: _Evidence, knowledge: KnowledgeIndex
) -> str | None:
    """The most relevant topic of the answers someone wrote that back this question."""
    best, best_relevance = None, 0.0
    for entry_id in evidence.entries:
        if person_id in knowledge.authors.get(entry_id, ()):
            for tag_id in knowledge.tags.get(entry_id, ()):
                signal = signals.get(tag_id)
                if signal is not None and signal.relevance > best_relevance:
                    best, best_relevance = signal.name, signal.relevance
    return best


def _articles(
    session: Session,
    query: str,
    evidence: _Evidence,
    people: PeopleIndex,
    knowledge: KnowledgeIndex,
    limit: int,
) -> tuple[list[Article], float]:
    """The entries worth reading first, and the best share of the question's words in one."""
    ranked = sorted(evidence.entries, key=lambda e: -evidence.entries[e])[: limit * 3]
    if not ranked:
        return [], 0.0
    texts = {row[0]: row for row in session.execute(_ENTRIES, {"ids": ranked})}
    words = set(terms(query))
    # From the full-text index (splitting the entries' text again cost half of this),
    # which holds every entry ranked here: they came from its search or its vectors.
    contained = knowledge.fulltext.coverage(words, ranked)
    articles = []
    best_coverage = 0.0
    for entry_id in ranked:
        if entry_id not in texts:
            continue
        _, title, body, helpful = texts[entry_id]
        coverage = contained.get(entry_id, 0) / len(words) if words else 0.0
        best_coverage = max(best_coverage, coverage)
        if entry_id in evidence.similarity:
            score = evidence.similarity[entry_id]
            relevant = score >= ARTICLE_SIMILARITY
        else:
            score = coverage
            relevant = score >= ARTICLE_COVERAGE
        if relevant:
            # Tag names from the index, which is as fresh as the entry (both revisions
            # are checked at every question).
            tags = sorted(
                people.names[t] for t in knowledge.tags.get(entry_id, ()) if t in people.names
            )
            articles.append(knowledge_service.article(entry_id, title, body, tags, helpful, score))
    return articles[:limit], best_coverage
