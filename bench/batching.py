"""Questions in batches at the scale org: what a question costs at batch 1, 4, 16 and 32,
and whether batched rankings are those of one question at a time.

On a copy of a scale database with sentence vectors (bench/slack_load.py builds one;
the copy is made so that the original is never changed), with the real model:
- per question, at each batch size, the model (`Encoder.encode`), the search for the
  nearest of the 100,000 entries (`EntryVectors.search`, one matrix product per
  batch), and the whole of what a command process does for a who-knows question
  (`Matcher.prepare` for the batch, then `Matcher.rank` for each), as medians of
  several rounds;
- on 3,000 questions (the load bench's three words, and clinc150's sentences when
  ../shared/data/clinc150 is there), the batched path against one question at a
  time: the largest difference between their vectors and between their neighbours'
  cosines, and whether experts and articles come in the same order;
- a knowledge entry added, edited and deleted: how long the next question's index
  check takes to apply it, and a compaction of the index beside it (its time, and
  the peak memory it takes);
- with `--before DIR` (a checkout of the code before), `whoknows ask --batch` there
  and here on the same questions, each on a fresh copy: the same experts and
  articles, in the same order, with the same scores?

    .venv/bin/python bench/batching.py --db /path/to/whoknows.db [--before DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# As in a command process (adapters/commands.py): one thread for matrix products.
for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import numpy as np  # noqa: E402

from bench.scale import WORDS  # noqa: E402
from bot.db import open_database  # noqa: E402
from bot.matching import NEIGHBOURS, Matcher  # noqa: E402
from bot.matching.embeddings import load_encoder  # noqa: E402

SIZES = (1, 4, 16, 32)
CLINC = ROOT.parent / "shared" / "data" / "clinc150" / "queries.jsonl"


def questions(count: int, seed: int) -> list[str]:
    """Half the load bench's questions (three of its words), half clinc150's."""
    rng = random.Random(seed)
    made = [" ".join(rng.sample(WORDS, 3)) for _ in range(count)]
    if CLINC.exists():
        real = [json.loads(line)["query"] for line in CLINC.open()]
        rng.shuffle(real)
        made[1::2] = real[: len(made[1::2])]
    return made


def per_question_ms(run: object, batches: list[list[str]], rounds: int) -> list[float]:
    """Milliseconds per question of `run(batch)` over all batches, for each round."""
    assert callable(run)
    total = sum(len(b) for b in batches)
    found = []
    for _ in range(rounds):
        started = time.perf_counter()
        for batch in batches:
            run(batch)
        found.append((time.perf_counter() - started) * 1000 / total)
    return found


def costs(matcher: Matcher, database: object, now: datetime, args: argparse.Namespace) -> dict:
    from bot.matching.embeddings import QueryVectors

    encoder = matcher.encoder
    assert encoder is not None
    out: dict[str, dict[str, float]] = {}
    with database.reading() as session:  # type: ignore[attr-defined]
        _, knowledge = matcher.cache.get(session, now)
        store = knowledge.store
        assert store is not None
        for size in SIZES:
            # Fresh questions every round: a cached vector would cost nothing.
            rounds = [questions(args.timed, 100 + size * 10 + r) for r in range(args.rounds)]
            encode, search, whole = [], [], []
            for asked in rounds:
                batches = [asked[i : i + size] for i in range(0, len(asked), size)]
                encode += per_question_ms(encoder.encode, batches, 1)
                vectors = [encoder.encode(b) for b in batches]
                started = time.perf_counter()
                for batch in vectors:
                    store.search(batch, NEIGHBOURS)
                search.append((time.perf_counter() - started) * 1000 / len(asked))
                matcher.queries = QueryVectors(encoder)  # none kept from before

                def answer(batch: list[str]) -> None:
                    if len(batch) > 1:
                        matcher.prepare(session, batch, now)
                    for question in batch:
                        matcher.rank(session, question, now)

                whole += per_question_ms(answer, batches, 1)
            out[str(size)] = {
                "encode_ms": round(statistics.median(encode), 3),
                "nearest_ms": round(statistics.median(search), 3),
                "question_ms": round(statistics.median(whole), 3),
                "question_ms_rounds": [round(v, 2) for v in whole],
            }
    return out


def same_rankings(
    matcher: Matcher, database: object, now: datetime, count: int, batch: int
) -> dict:
    """The batched path against one question at a time, on `count` questions."""
    from bot.matching.embeddings import QueryVectors

    encoder = matcher.encoder
    assert encoder is not None
    asked = questions(count, 7)
    alone_vectors = np.stack([encoder.encode([q])[0] for q in asked])
    batched_vectors = np.concatenate(
        [encoder.encode(asked[i : i + batch]) for i in range(0, count, batch)]
    )
    vector_diff = float(np.abs(alone_vectors - batched_vectors).max())
    experts = articles = confident = 0
    score_diff = sim_diff = relevance_diff = 0.0
    with database.reading() as session:  # type: ignore[attr-defined]
        _, knowledge = matcher.cache.get(session, now)
        store = knowledge.store
        assert store is not None
        for start in range(0, count, batch):
            chunk = asked[start : start + batch]
            rows = batched_vectors[start : start + batch]
            together = store.search(rows, NEIGHBOURS)
            for i, (ids, sims) in enumerate(together):
                alone_ids, alone_sims = store.search(alone_vectors[start + i][None, :], NEIGHBOURS)[
                    0
                ]
                if list(ids) == list(alone_ids):
                    sim_diff = max(sim_diff, float(np.abs(sims - alone_sims).max()))
                else:
                    sim_diff = float("inf")
            matcher.queries = QueryVectors(encoder)
            one_by_one = [matcher.rank(session, q, now) for q in chunk]
            matcher.queries = QueryVectors(encoder)
            matcher.prepare(session, chunk, now)
            batched = [matcher.rank(session, q, now) for q in chunk]
            for one, other in zip(one_by_one, batched, strict=True):
                experts += [c.key for c in one.experts] == [c.key for c in other.experts]
                articles += [a.entry_id for a in one.articles] == [
                    a.entry_id for a in other.articles
                ]
                confident += one.confident == other.confident
                for a, b in zip(one.experts, other.experts, strict=False):
                    score_diff = max(score_diff, abs(a.score - b.score))
                for a, b in zip(one.tags, other.tags, strict=False):
                    if a.tag_id == b.tag_id:
                        relevance_diff = max(relevance_diff, abs(a.relevance - b.relevance))
    return {
        "questions": count,
        "batch": batch,
        "max_vector_difference": vector_diff,
        "max_neighbour_cosine_difference": sim_diff,
        "same_experts_in_order": experts,
        "same_articles_in_order": articles,
        "same_confidence": confident,
        "max_expert_score_difference": score_diff,
        "max_tag_relevance_difference": relevance_diff,
    }


def changes(matcher: Matcher, database: object, now: datetime) -> dict:
    """A knowledge change applied in place at this size, and a compaction beside."""
    from sqlalchemy import delete

    from bot.db.models import Embedding, KnowledgeEntry
    from bot.services import knowledge

    found: dict[str, object] = {}
    timings: dict[str, list[float]] = {"add": [], "edit": [], "delete": []}
    for i in range(5):
        with database.unit_of_work() as session:  # type: ignore[attr-defined]
            entry, _ = knowledge.add_entry(
                session, f"Zebra crossing note {i}", f"Send zebra{i} cases to the desk.", [], []
            )
            session.flush()
            entry_id = entry.id
        for step in ("add", "edit", "delete"):
            if step != "add":
                with database.unit_of_work() as session:  # type: ignore[attr-defined]
                    row = session.get(KnowledgeEntry, entry_id)
                    if step == "edit":  # as `knowledge.edit` does: its old vector goes
                        session.execute(
                            delete(Embedding).where(
                                Embedding.kind == "knowledge", Embedding.item_id == entry_id
                            )
                        )
                        row.body = f"Send zebra{i} cases to the other desk, quickly."
                    else:
                        session.delete(row)
            with database.reading() as session:  # type: ignore[attr-defined]
                started = time.perf_counter()
                matcher.cache.get(session, now)  # what the next question does first
                timings[step].append((time.perf_counter() - started) * 1000)
    found["applied_ms_median"] = {k: round(statistics.median(v), 2) for k, v in timings.items()}
    index = matcher.cache.knowledge
    assert index is not None
    with matcher.cache._lock:
        build = index.freeze()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    build()
    found["compaction_s"] = round(time.perf_counter() - started, 2)
    found["peak_rss_mb_before_and_after_compaction"] = [
        round(before),
        round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    ]
    return found


def ask_batch(code: Path, database_file: Path, asked: list[str], workdir: Path) -> list[dict]:
    """`whoknows ask --batch` run from the checkout at `code`, on a fresh copy."""
    copy = workdir / f"ask-{code.name}.db"
    shutil.copy(database_file, copy)
    listing = workdir / "questions.txt"
    listing.write_text("\n".join(asked) + "\n")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "adapters.cli",
            "--db",
            f"sqlite:///{copy}",
            "ask",
            "--batch",
            listing,
        ],
        cwd=code,
        capture_output=True,
        text=True,
        check=True,
    )
    copy.unlink()
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


def against_before(before: Path, database_file: Path, count: int, workdir: Path) -> dict:
    asked = questions(count, 9)
    theirs = ask_batch(before, database_file, asked, workdir)
    ours = ask_batch(ROOT, database_file, asked, workdir)
    same = score = 0
    worst = 0.0
    for one, other in zip(theirs, ours, strict=True):
        order = [e["id"] for e in one["experts"]] == [e["id"] for e in other["experts"]]
        order &= [a["id"] for a in one["articles"]] == [a["id"] for a in other["articles"]]
        same += order
        pairs = [
            *zip(one["experts"], other["experts"], strict=False),
            *zip(one["articles"], other["articles"], strict=False),
        ]
        diffs = [abs(a["score"] - b["score"]) for a, b in pairs]
        worst = max([worst, *diffs])
        score += all(d <= 1e-4 for d in diffs)  # scores are printed to four places
    return {
        "questions": len(asked),
        "same_experts_and_articles_in_order": same,
        "same_scores": score,
        "max_score_difference": worst,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", type=Path, required=True, help="a scale database with vectors")
    parser.add_argument("--timed", type=int, default=320, help="questions per timed round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--check", type=int, default=3_000, help="questions compared")
    parser.add_argument("--batch", type=int, default=16, help="the batch the check uses")
    parser.add_argument("--before", type=Path, help="a checkout of the code before")
    args = parser.parse_args()
    encoder = load_encoder()
    if encoder is None:
        sys.exit("the semantic extra is not installed")
    workdir = Path(tempfile.mkdtemp(prefix="whoknows-batching-"))
    try:
        copy = workdir / "whoknows.db"
        shutil.copy(args.db, copy)
        database = open_database(f"sqlite:///{copy}")
        matcher = Matcher(encoder, reading=database.reading)
        now = datetime.now(UTC)
        started = time.perf_counter()
        with database.reading() as session:
            matcher.cache.get(session, now)
        report: dict[str, object] = {"index_load_s": round(time.perf_counter() - started, 1)}
        report["per_batch_size"] = costs(matcher, database, now, args)
        report["batched_against_one_at_a_time"] = same_rankings(
            matcher, database, now, args.check, args.batch
        )
        report["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        report["knowledge_changes"] = changes(matcher, database, now)
        database.dispose()
        if args.before is not None:
            report["against_the_code_before"] = against_before(
                args.before, args.db, args.check, workdir
            )
        print(json.dumps(report, indent=2))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
