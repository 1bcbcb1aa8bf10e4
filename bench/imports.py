"""The people import at scale: `whoknows import people` on a 100,000-row CSV, on SQLite.

Writes the file (the synthetic org of bench/scale.py: each person three of 2,000
tags, one of 40 teams), then runs the real command line in a process of its own
and prints its wall time, CPU time and that process's peak resident memory. Compare runs
within one sitting: the machine's speed drifts between sittings.

    .venv/bin/python bench/imports.py [--people N] [--tags N] [--runs N] [--root DIR]
                                      [--no-index]

--root runs the code of another checkout (an older commit, to compare before and after).
--no-index is passed on to the import: people imports compute no vectors now, but some
older commits' did without it.
"""

from __future__ import annotations

import argparse
import csv
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import WORDS  # noqa: E402


def write_people(path: Path, people: int, tags: int, rng: random.Random) -> None:
    names: set[str] = set()
    while len(names) < tags:
        names.add(" ".join(rng.sample(WORDS, rng.choice((1, 2, 2, 3)))))
    tag_names = sorted(names)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "name", "team", "timezone", "skills"])
        for i in range(people):
            skills = ";".join(f"{name}:{rng.randint(1, 5)}" for name in rng.sample(tag_names, 3))
            writer.writerow([f"p{i:06d}", f"Person {i}", f"Team {i % 40}", "Europe/London", skills])


def run_import(
    root: Path, database: Path, source: Path, no_index: bool
) -> tuple[float, float, float, str]:
    """Seconds, CPU seconds, peak RSS in MB and the command's output, for one import in a
    new process (CPU time moves less than wall time on a machine others share)."""
    program = (
        "import resource, sys\n"
        "from adapters.cli import main\n"
        "code = main(sys.argv[1:])\n"
        "used = resource.getrusage(resource.RUSAGE_SELF)\n"
        "cpu = used.ru_utime + used.ru_stime\n"
        "print(f'peak {used.ru_maxrss / 1024:.1f} {cpu:.1f}', file=sys.stderr)\n"
        "raise SystemExit(code)\n"
    )
    argv = ["--db", f"sqlite:///{database}", "import", "people", str(source)]
    argv += ["--no-index"] if no_index else []
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", program, *argv], cwd=root, capture_output=True, text=True
    )
    seconds = time.perf_counter() - started
    peak = [line for line in done.stderr.splitlines() if line.startswith("peak ")]
    if done.returncode != 0 or not peak:
        raise SystemExit(f"the import failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    _, rss, cpu = peak[-1].split()
    return seconds, float(cpu), float(rss), done.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--tags", type=int, default=2_000)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout whose code runs")
    parser.add_argument(
        "--no-index", action="store_true", help="pass --no-index on (for older checkouts)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        source = folder / "people.csv"
        write_people(source, args.people, args.tags, random.Random(7))
        for run in range(args.runs):
            database = folder / f"import-{run}.db"
            seconds, cpu, peak, output = run_import(
                args.root.resolve(), database, source, args.no_index
            )
            print(
                f"{args.people:,} people: {seconds:.1f} s ({cpu:.1f} s CPU), "
                f"peak RSS {peak:.0f} MB ({output})",
                flush=True,
            )


if __name__ == "__main__":
    main()
