"""Speed and memory at the size of a large contact center, on SQLite.

Generates a synthetic org (default 10,000 people, 2,000 tags, 100,000 knowledge
entries), imports it through the real import path (with its progress bar), then
asks questions through the real matcher and prints the median and p95 latency
of a warm `ask`, the import times, the time the first ask takes to build a
worker's in-memory index and the peak resident memory. It also times
asks at a tenth of the people, to show how cost grows with the org. With
--workdir the databases are kept and a later run skips the import.

With --semantic the tag names and the questions are embedded for real; the
100,000 entry vectors are random unit vectors (their values do not change the
time a nearest-neighbour search takes, and encoding them would take minutes).

    .venv/bin/python bench/scale.py [--people N] [--tags N] [--entries N] [--semantic]
                                    [--workdir DIR]
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import random
import resource
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert, select  # noqa: E402

from adapters.cli import progress_bar  # noqa: E402
from bench.common import WORDS  # noqa: E402
from bot.data.transfer import import_knowledge, import_people  # noqa: E402
from bot.db import open_database  # noqa: E402
from bot.db.models import Embedding, KnowledgeEntry  # noqa: E402
from bot.matching import Matcher  # noqa: E402
from bot.matching.embeddings import DIMENSIONS, MODEL_ID, load_encoder  # noqa: E402

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
FILLER = "customer asks how why when can we the a for with after before still not".split()


def generate(folder: Path, people: int, tags: int, entries: int, rng: random.Random) -> list[str]:
    names: set[str] = set()
    while len(names) < tags:
        names.add(" ".join(rng.sample(WORDS, rng.choice((1, 2, 2, 3)))))
    tag_names = sorted(names)
    holders: dict[str, list[str]] = {name: [] for name in tag_names}
    with (folder / "people.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "name", "team", "timezone", "skills"])
        for i in range(people):
            key = f"p{i:05d}"
            held = rng.sample(tag_names, 3)
            for name in held:
                holders[name].append(key)
            skills = ";".join(f"{name}:{rng.randint(1, 5)}" for name in held)
            writer.writerow([key, f"Person {i}", f"Team {i % 40}", "Europe/London", skills])
    with (folder / "kb.jsonl").open("w") as handle:
        for i in range(entries):
            name = rng.choice(tag_names)
            words = name.split() + rng.sample(WORDS, 4) + rng.sample(FILLER, 3)
            rng.shuffle(words)
            text = " ".join(words)
            authors = [rng.choice(holders[name])] if holders[name] else []
            row = {"title": f"{text} #{i}", "body": text, "tags": [name], "authors": authors}
            handle.write(json.dumps(row) + "\n")
    return tag_names


def questions(tag_names: list[str], count: int, rng: random.Random) -> list[str]:
    asked = []
    for _ in range(count):
        words = rng.choice(tag_names).split() + rng.sample(WORDS, 2) + rng.sample(FILLER, 3)
        rng.shuffle(words)
        asked.append(" ".join(words))
    return asked


def random_vectors(database, seed: int) -> None:  # type: ignore[no-untyped-def]
    import numpy as np

    generator = np.random.default_rng(seed)
    with database.unit_of_work() as session:
        ids = list(session.scalars(select(KnowledgeEntry.id)))
        for start in range(0, len(ids), 5_000):
            chunk = ids[start : start + 5_000]
            matrix = generator.standard_normal((len(chunk), DIMENSIONS)).astype(np.float32)
            matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
            session.execute(
                insert(Embedding),
                [
                    {"kind": "knowledge", "item_id": i, "model": MODEL_ID, "vector": v.tobytes()}
                    for i, v in zip(chunk, matrix, strict=True)
                ],
            )


def time_asks(database, matcher: Matcher, asked: list[str]) -> tuple[float, list[float]]:  # type: ignore[no-untyped-def]
    """The first ask (it builds the worker's index) in seconds, then warm asks in ms."""
    with database.unit_of_work() as session:
        started = time.perf_counter()
        matcher.rank(session, asked[0], NOW)
        cold = time.perf_counter() - started
        latencies = []
        for question in asked:
            started = time.perf_counter()
            matcher.rank(session, question, NOW)
            latencies.append((time.perf_counter() - started) * 1000)
    return cold, latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--tags", type=int, default=2_000)
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--questions", type=int, default=300)
    parser.add_argument("--semantic", action="store_true")
    parser.add_argument(
        "--workdir", type=Path, help="keep the databases here and reuse them on the next run"
    )
    args = parser.parse_args()
    rng = random.Random(7)
    encoder = load_encoder() if args.semantic else None
    if args.semantic and encoder is None:
        raise SystemExit("the semantic extra is not installed")
    figures = {}
    with tempfile.TemporaryDirectory() as scratch:
        home = args.workdir or Path(scratch)
        home.mkdir(parents=True, exist_ok=True)
        for people in (args.people // 10, args.people):
            tag_names = generate(home, people, args.tags, args.entries, rng)
            name = f"scale-{people}-{args.tags}-{args.entries}{'-semantic' if encoder else ''}.db"
            reuse = (home / name).exists()
            database = open_database(f"sqlite:///{home / name}")
            people_s = kb_s = math.nan
            seed = rng.randint(0, 2**31) if encoder is not None else 0
            if not reuse:
                started = time.perf_counter()
                report = import_people(
                    database, home / "people.csv", NOW, progress_bar("people", sys.stderr)
                )
                people_s = time.perf_counter() - started
                started = time.perf_counter()
                kb_report = import_knowledge(
                    database, home / "kb.jsonl", progress_bar("knowledge", sys.stderr)
                )
                kb_s = time.perf_counter() - started
                assert report.ok and kb_report.ok, (report.summary(), kb_report.summary())
                if encoder is not None:
                    random_vectors(database, seed)
            cold, latencies = time_asks(
                database, Matcher(encoder), questions(tag_names, args.questions, rng)
            )
            figures[people] = (people_s, kb_s, cold, latencies)
            database.dispose()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    mode = "semantic + lexical" if encoder else "lexical only"
    print(f"\n{args.tags:,} tags, {args.entries:,} knowledge entries, {mode}")
    for people, (people_s, kb_s, cold, latencies) in figures.items():
        p95 = statistics.quantiles(latencies, n=20)[-1]
        print(
            f"  {people:>6,} people: import people {people_s:5.1f} s, knowledge {kb_s:5.1f} s; "
            f"index load {cold:4.1f} s; "
            f"ask median {statistics.median(latencies):5.1f} ms, p95 {p95:5.1f} ms"
        )
    small, large = (statistics.median(f[3]) for f in figures.values())
    print(f"  ask median at 10x the people: x{large / small:.2f}")
    print(f"  peak RSS {peak_mb:,.0f} MB")


if __name__ == "__main__":
    main()
