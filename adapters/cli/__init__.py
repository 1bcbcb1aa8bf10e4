"""The `whoknows` command line: the local chat, the database, imports, exports, asks."""

from __future__ import annotations

import argparse
import csv
import getpass
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from adapters.cli import threads  # noqa: F401 (first: it limits BLAS before numpy loads)
from bot import matching, messages
from bot.config import Settings, redact_url
from bot.data.transfer import (
    ImportReport,
    Progress,
    export_knowledge,
    export_people,
    import_knowledge,
    import_people,
    import_tags,
    spreadsheet_row,
)
from bot.db import open_database
from bot.db.models import Person, Team
from bot.matching.vectors import index_all
from bot.ops import heap
from bot.runtime import outbox
from bot.services import Services, accounts, analytics, forgetting, people
from bot.services.permissions import Operator
from bot.types import Reply, Text

DEMO_DEFAULT_HANDLE = "alex"
ASK_BATCH = 16  # questions of `ask --batch` encoded and searched together


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="whoknows", description="Find the colleague who knows, in seconds."
    )
    parser.add_argument(
        "--db", metavar="URL", help="database URL (overrides WHOKNOWS_DATABASE_URL)"
    )
    commands = parser.add_subparsers(dest="command", required=True)

    chat = commands.add_parser("chat", help="chat with the bot in this terminal")
    chat.add_argument("--as", dest="handle", metavar="HANDLE", help="act as this person")
    chat.add_argument("--no-demo", action="store_true", help="do not seed the demo org")

    serve = commands.add_parser("serve", help="serve Slack and Teams over HTTP")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=3000)
    serve.add_argument(
        "--workers", type=int, default=1, help="serving processes sharing the port (PostgreSQL)"
    )
    serve.add_argument("--fd", type=int, help=argparse.SUPPRESS)  # a worker of --workers

    db = commands.add_parser("db", help="database maintenance")
    db.add_argument("action", choices=["upgrade"])

    imp = commands.add_parser(
        "import",
        help="import people (CSV/JSONL), knowledge (JSONL) or tags (CSV: name, description, "
        "examples split by ';')",
    )
    imp.add_argument("kind", choices=["people", "kb", "tags"])
    imp.add_argument("file", type=Path)
    imp.add_argument(
        "--no-index", action="store_true", help="leave sentence vectors for `whoknows index`"
    )

    exp = commands.add_parser("export", help="export people or knowledge")
    exp.add_argument("kind", choices=["people", "kb"])
    exp.add_argument("--format", choices=["csv", "jsonl"], help="people: csv (default) or jsonl")
    exp.add_argument("-o", "--output", type=Path, help="file to write (default: standard output)")
    exp.add_argument("--force", action="store_true", help="write over an existing --output file")

    ask = commands.add_parser("ask", help="ask who knows about a topic")
    ask.add_argument("text", nargs="?", help="the question")
    ask.add_argument("--json", action="store_true", help="print JSON")
    ask.add_argument("--limit", type=int, default=5)
    ask.add_argument("--as", dest="handle", metavar="ID", help="ask as this person")
    ask.add_argument(
        "--batch", type=Path, metavar="FILE", help="one question a line; prints JSON lines"
    )

    commands.add_parser("index", help="compute the sentence vectors entries lack")

    commands.add_parser("demo", help="seed the demo org into an empty database")

    forget = commands.add_parser(
        "forget", help="remove a person's profile and anonymise what they wrote (audited)"
    )
    forget.add_argument("person", help="the person's handle (id)")

    ppl = commands.add_parser("people", help="link people to their accounts, merge two into one")
    ppl_commands = ppl.add_subparsers(dest="action", required=True)
    link = ppl_commands.add_parser("link", help="link accounts or an e-mail to a person")
    link.add_argument("person", help="the person's handle (id)")
    link.add_argument("--slack", action="append", default=[], metavar="U…", help="a Slack user id")
    link.add_argument(
        "--teams", action="append", default=[], metavar="ID", help="a Microsoft Entra object id"
    )
    link.add_argument("--email", help="their work e-mail")
    merge = ppl_commands.add_parser("merge", help="make two records of one person one (audited)")
    merge.add_argument("keep", help="the handle that stays")
    merge.add_argument("drop", help="the handle whose skills, accounts and history move to KEEP")
    ppl_commands.add_parser("conflicts", help="links refused on doubt, for an admin to decide")

    teams = commands.add_parser("teams-package", help="write the Teams app package to upload")
    teams.add_argument("--host", required=True, help="the public host of `whoknows serve`")
    teams.add_argument("--app-id", help="the Azure Bot's app id (default: MICROSOFT_APP_ID)")
    teams.add_argument("-o", "--output", type=Path, default=Path("whoknows-teams.zip"))

    report = commands.add_parser(
        "report", help="team KPIs (huddles, knowledge, top helpers), growth, weekly digests"
    )
    report.add_argument(
        "what",
        nargs="?",
        choices=["kpis", "growth", "digest"],
        default="kpis",
        help="kpis (default); growth: each person's growth timeline; digest: each "
        "team's latest weekly digest",
    )
    report.add_argument("--team", metavar="NAME", help="growth, digest: only this team")
    report.add_argument("--person", metavar="HANDLE", help="growth: only this person")
    report.add_argument("--period", choices=["week", "month"], default="week")
    report.add_argument("--csv", action="store_true", help="print CSV rows instead of text")
    report.add_argument("--post", metavar="CHANNEL", help="also post the summary in this channel")
    report.add_argument(
        "--platform", default="slack", help="where --post posts (delivered by `whoknows serve`)"
    )
    return parser


def _services(settings: Settings) -> Services:
    try:
        database = open_database(settings.database_url)
    except Exception as error:  # the URL may hold a password: never echo it raw
        raise SystemExit(
            f"whoknows: cannot open the database {redact_url(settings.database_url)}: "
            f"{type(error).__name__}"
        ) from None
    return Services(database, settings)


def _seed_if_empty(services: Services) -> bool:
    from bot.data.demo import seed_demo, seed_growth

    with services.db.unit_of_work() as session:
        if people.count_people(session):
            return False
        seed_demo(session, services.clock(), history=True)
        seed_growth(session, services.clock())
    if services.matcher.encoder is not None:
        index_all(services.db, services.matcher.encoder)
    return True


def _chat(services: Services, handle: str | None, demo: bool) -> int:
    from adapters.console.chat import run_chat
    from skills import build_router

    if demo and _seed_if_empty(services):
        print("Seeded a demo contact center: 30 people in 3 teams, 40 topics, 50 answers.")
    if handle is None:
        with services.db.unit_of_work() as session:
            default = people.by_key(session, DEMO_DEFAULT_HANDLE) if demo else None
            handle = (default or people.ensure_console_person(session)).key
    return run_chat(services, build_router(), handle.lstrip("@").lower(), sys.stdin, sys.stdout)


def _serve(services: Services, args: argparse.Namespace) -> int:
    from adapters.server import serve
    from bot.ops import logs
    from skills import build_router

    logs.configure(services.settings)

    workers = max(1, args.workers)
    return serve(services, build_router(), args.host, args.port, workers=workers, fd=args.fd)


def progress_bar(label: str, out: TextIO) -> Progress | None:
    if not out.isatty():
        return None
    last = 0.0

    def show(done: int, total: int) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last < 0.1 and done < total:
            return
        last = now
        share = done / total if total else 1.0
        bar = "█" * int(share * 30)
        out.write(f"\r{label} |{bar:<30}| {done:,}/{total:,} lines")
        if done >= total:
            out.write("\n")
        out.flush()

    return show


def _import(services: Services, kind: str, path: Path, index: bool) -> int:
    if not path.is_file():
        print(f"whoknows: no such file: {path}", file=sys.stderr)
        return 2
    progress = progress_bar(f"importing {path.name}", sys.stderr)
    heap.settle()  # what this process holds now, it holds to its end: out of the collector's way
    report: ImportReport
    operator = Operator(f"cli:{getpass.getuser() or 'operator'}")
    if kind == "people":
        report = import_people(services.db, path, services.clock(), progress, by=operator)
    elif kind == "tags":
        report = import_tags(services.db, path, services.clock(), progress, by=operator)
    else:
        report = import_knowledge(services.db, path, progress)
    print(report.summary())
    # People: no model here (it would triple the import's memory). New tags' vectors are
    # stored where the index is built, off the request path (bot.matching.index).
    if index and kind == "kb" and report.landed and services.matcher.encoder is not None:
        _index(services)
    return 0 if report.ok else 1


def _export(
    services: Services, kind: str, fmt: str | None, output: Path | None, force: bool
) -> int:
    if output is None:
        return _export_to(services, kind, fmt, sys.stdout)
    if output.exists() and not force:
        print(f"whoknows: {messages.EXPORT_EXISTS.format(path=output)}", file=sys.stderr)
        return 2
    # Written beside the target and moved over it once complete: a failed export
    # leaves no half file, and an existing one as it was.
    partial = output.with_name(f".{output.name}.partial")
    try:
        with partial.open("w", encoding="utf-8", newline="") as out:
            _export_to(services, kind, fmt, out)
        partial.replace(output)
    except OSError as error:
        partial.unlink(missing_ok=True)
        reason = error.strerror or type(error).__name__
        print(
            f"whoknows: {messages.EXPORT_CANNOT_WRITE.format(path=output, reason=reason)}",
            file=sys.stderr,
        )
        return 1
    return 0


def _export_to(services: Services, kind: str, fmt: str | None, out: TextIO) -> int:
    with services.db.reading() as session:
        if kind == "people":
            export_people(session, out, fmt or "csv")
        else:
            export_knowledge(session, out)
    return 0


def ranking_json(ranking: matching.Ranking) -> dict[str, object]:
    return {
        "query": ranking.query,
        "experts": [
            {
                "id": card.key,
                "name": card.name,
                "score": card.score,
                "presence": card.presence.status,
                "reasons": [reason for reason in card.reason.split("; ") if reason],
                # What the reasons rest on: verified, self-declared or earned.
                "basis": card.basis,
            }
            for card in ranking.experts
        ],
        "articles": [
            {"id": article.entry_id, "title": article.title, "score": article.score}
            for article in ranking.articles
        ],
        "confident": ranking.confident,
    }


def _ask(services: Services, args: argparse.Namespace) -> int:
    if args.batch is not None and args.text:
        print("whoknows: give a question or --batch FILE, not both", file=sys.stderr)
        return 2
    if args.batch is not None:
        if not args.batch.is_file():
            print(f"whoknows: no such file: {args.batch}", file=sys.stderr)
            return 2
        questions = [line.strip() for line in args.batch.open(encoding="utf-8")]
        as_json = True
    elif args.text and args.text.strip():
        questions, as_json = [args.text], args.json
    else:
        print(
            'whoknows: what is the question? e.g. whoknows ask "refund a top-up"', file=sys.stderr
        )
        return 2
    with services.db.unit_of_work() as session:
        requester = people.by_key(session, args.handle) if args.handle else None
        if args.handle and requester is None:
            print(f"whoknows: nobody has the id '{args.handle}'", file=sys.stderr)
            return 2
        for start in range(0, len(questions), ASK_BATCH):
            # Encoded and searched together, then ranked one by one, as a command
            # process does with the questions waiting for it.
            batch = questions[start : start + ASK_BATCH]
            services.matcher.prepare(session, batch, services.clock())
            for question in batch:
                ranking = services.matcher.rank(
                    session,
                    question,
                    services.clock(),
                    requester_id=requester.id if requester else None,
                    limit=args.limit,
                )
                if as_json:
                    print(json.dumps(ranking_json(ranking), ensure_ascii=False))
                else:
                    _print_ranking(ranking)
    return 0


def _print_ranking(ranking: matching.Ranking) -> None:
    from adapters.console.render import render
    from bot.types import Reply

    print(render(Reply((*ranking.articles, *ranking.experts))) or "Nobody matches that yet.")


def _index(services: Services) -> int:
    encoder = services.matcher.encoder
    if encoder is None:
        print(
            "whoknows: sentence vectors need the semantic extra (pip install 'whoknows[semantic]')"
        )
        return 1
    added = index_all(services.db, encoder, progress_bar("computing vectors", sys.stderr))
    print(f"{added} knowledge entries indexed")
    return 0


def _upgrade(services: Services) -> int:
    # Opening the database already ran the migrations.
    print(f"database at {redact_url(services.settings.database_url)} is up to date")
    return 0


def _forget(services: Services, handle: str) -> int:
    operator = getpass.getuser() or "operator"
    with services.db.unit_of_work() as session:
        try:
            key = people.person_key(handle)
        except ValueError:  # no handle holds a control character
            key = None
        person = session.scalar(select(Person).where(Person.key == key)) if key else None
        if person is None:
            print(f"whoknows: nobody has the handle {handle!r}", file=sys.stderr)
            return 1
        anonymous = forgetting.forget(session, person, services.clock(), f"cli:{operator}")
    print(messages.FORGOT.format(handle=handle, anonymous=anonymous))
    return 0


def _person_or_none(session: Session, handle: str) -> Person | None:
    person = people.by_key(session, handle.lstrip("@"))
    if person is None:
        print(f"whoknows: nobody has the handle {handle!r}", file=sys.stderr)
    return person


def _people(services: Services, args: argparse.Namespace) -> int:
    label = f"cli:{getpass.getuser() or 'operator'}"
    if args.action == "conflicts":
        with services.db.reading() as session:
            rows = accounts.open_conflicts(session)
            for row in rows:
                print(f"{row.created_at:%Y-%m-%d} {row.seen_in}: {accounts.describe(row)}")
        if not rows:
            print("no conflicts: every account is linked or its own person")
        return 0
    try:
        with services.db.unit_of_work() as session:
            if args.action == "merge":
                keep = _person_or_none(session, args.keep)
                drop = _person_or_none(session, args.drop)
                if keep is None or drop is None:
                    return 1
                dropped = drop.key
                accounts.merge(session, keep, drop, actor_label=label)
                print(f"merged {dropped} into {keep.key}")
                return 0
            person = _person_or_none(session, args.person)
            if person is None:
                return 1
            if not (args.slack or args.teams or args.email):
                print("whoknows: give --slack, --teams or --email", file=sys.stderr)
                return 2
            changes = [
                accounts.link_by_hand(session, person, platform, account, actor_label=label)
                for platform, ids in (("slack", args.slack), ("teams", args.teams))
                for account in ids
            ]
            if args.email:
                changes.append(accounts.give_email(session, person, args.email, actor_label=label))
            handle = person.key
    except accounts.LinkError as refused:
        with services.db.unit_of_work() as session:
            refused.audit(session)  # the refused change itself rolled back
        print(f"whoknows: {refused.message}", file=sys.stderr)
        return 1
    print(f"{handle}: {'linked' if any(changes) else 'already linked, nothing changed'}")
    return 0


def _demo(services: Services) -> int:
    seeded = _seed_if_empty(services)
    print("demo org seeded" if seeded else "the database already has people; left alone")
    return 0


def _growth_or_digest(services: Services, args: argparse.Namespace) -> int:
    """`report growth`: timelines as text or CSV; `report digest`: each team's latest."""
    from bot.services import digest, learning_goals

    with services.db.reading() as session:
        teams = list(session.scalars(select(Team).order_by(Team.name)))
        if args.team:
            teams = [t for t in teams if t.name.lower() == args.team.strip().lower()]
            if not teams:
                print(f"whoknows: there is no team {args.team!r}", file=sys.stderr)
                return 2
        if args.what == "digest":
            for team in teams:
                schedule = digest.schedule_of(session, team)
                start, end = digest.latest_window(schedule, services.clock())
                found = digest.compute(
                    session, team, start, end, zone=schedule.zone, leaderboard=schedule.leaderboard
                )
                print("\n".join(digest.lines(found)) + "\n")
            return 0
        query = select(Person).where(Person.deleted_at.is_(None)).order_by(Person.key)
        if args.person:
            query = query.where(Person.key == args.person.strip().lstrip("@").lower())
        elif args.team:
            query = query.where(Person.team_id.in_([t.id for t in teams]))
        persons = list(session.scalars(query))
        if args.person and not persons:
            print(f"whoknows: nobody has the handle {args.person!r}", file=sys.stderr)
            return 2
        rows = [
            (person, event)
            for person in persons
            for event in learning_goals.timeline(session, person)
        ]
        if args.csv:
            writer = csv.writer(sys.stdout, lineterminator="\n")
            writer.writerow(GROWTH_CSV_HEADER)
            for person, event in rows:
                writer.writerow(
                    [
                        person.key,
                        person.display_name,
                        person.team.name if person.team else "",
                        event.when.isoformat("T", "seconds"),
                        event.event,
                        event.topic,
                        event.detail,
                    ]
                )
            return 0
        for person, event in rows:
            topic = f" [{event.topic}]" if event.topic else ""
            detail = f": {event.detail}" if event.detail else ""
            print(f"{event.when:%Y-%m-%d %H:%M} {person.key} {event.label}{topic}{detail}")
        if not rows:
            print("nothing to show yet: no goals, observations, answers or skills")
    return 0


GROWTH_CSV_HEADER = ("person", "name", "team", "date", "event", "topic", "detail")


def _report(services: Services, args: argparse.Namespace) -> int:
    if args.what != "kpis":
        return _growth_or_digest(services, args)
    now = services.clock()
    start, end = analytics.period_bounds(args.period, now)
    with services.db.unit_of_work() as session:
        kpis = analytics.team_kpis(session, start, end, analytics.Scope.everything())
        text = analytics.report_text(kpis)
        if args.post:
            reply = Reply.of(*(Text(part) for part in text.split("\n\n")), private=False)
            outbox.enqueue(
                session,
                platform=args.platform,
                kind="post",
                channel=args.post,
                reply=reply,
                now=now,
            )
    if args.csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(["period_start", "period_end", "section", "subject", "metric", "value"])
        for row in analytics.report_rows(kpis):
            period = [start.isoformat("T", "seconds"), end.isoformat("T", "seconds")]
            writer.writerow(spreadsheet_row([*period, *row]))  # names are anyone's text
    else:
        print(text)
    if args.post:
        print(f"queued for {args.post} on {args.platform}; `whoknows serve` delivers it")
    return 0


def _teams_package(app_id: str | None, host: str, output: Path) -> int:
    import os

    from adapters.teams.package import write_package
    from skills import build_router

    app_id = app_id or os.environ.get("MICROSOFT_APP_ID")
    if not app_id:
        raise SystemExit("whoknows: give --app-id or set MICROSOFT_APP_ID (the Azure Bot's app id)")
    try:
        write_package(output, app_id, host, build_router().routes.values())
    except ValueError as error:
        raise SystemExit(f"whoknows: {error}") from None
    print(f"wrote {output}: upload it in Teams (Apps → Manage your apps → Upload an app)")
    return 0


RUNNERS = {
    "chat": lambda services, args: _chat(services, args.handle, demo=not args.no_demo),
    "db": lambda services, args: _upgrade(services),
    "import": lambda services, args: _import(services, args.kind, args.file, not args.no_index),
    "export": lambda services, args: _export(
        services, args.kind, args.format, args.output, args.force
    ),
    "ask": _ask,
    "index": lambda services, args: _index(services),
    "demo": lambda services, args: _demo(services),
    "serve": _serve,
    "forget": lambda services, args: _forget(services, args.person),
    "people": _people,
    "report": _report,
    "teams-package": lambda services, args: _teams_package(args.app_id, args.host, args.output),
}


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    services = _services(Settings.from_env(database_url=args.db))
    try:
        return RUNNERS[args.command](services, args)
    finally:
        services.db.dispose()


if __name__ == "__main__":
    raise SystemExit(main())
