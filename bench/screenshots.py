"""Screenshots of every dashboard page, for the README, taken in headless Chromium.

Seeds the demo org with eight weeks of made-up but plausible activity (a fixed
random seed, so the pictures only change when the pages do), serves the real
application on a free local port, signs in through a magic link and saves
one PNG per page under docs/.

    .venv/bin/python bench/screenshots.py [--chromium /usr/bin/chromium] [--out docs]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import shutil
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aiohttp import web  # noqa: E402
from sqlalchemy import select  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from adapters.server import build_app  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.data.demo import seed_demo  # noqa: E402
from bot.db import open_database  # noqa: E402
from bot.db.models import (  # noqa: E402
    HelpfulVote,
    Huddle,
    HuddleParticipant,
    HuddleState,
    KnowledgeEntry,
    Person,
    QueryLog,
    Skill,
    Team,
)
from bot.services import Services, expertise, knowledge, people  # noqa: E402
from bot.types import Command  # noqa: E402
from skills import build_router  # noqa: E402

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)  # a Monday morning
PAGES = (
    ("coverage", "/dashboard/coverage"),
    ("gaps", "/dashboard/gaps"),
    ("huddles", "/dashboard/huddles"),
    ("kpis", "/dashboard/kpis?period=month"),
    ("people", "/dashboard/people"),
    ("person", "/dashboard/people/alex"),
    ("knowledge", "/dashboard/knowledge"),
    ("audit", "/dashboard/audit"),
)
GAP_QUESTIONS = (
    "how do I turn on wifi calling",
    "wifi calling not working on iphone",
    "customer wants wifi calling on a samsung",
    "fibre installation date moved",
    "when does the fibre installation engineer arrive",
    "transfer account ownership to a son",
    "change the account holder after a death",
    "esim for a smartwatch",
)


class FixedClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def seed_activity(session: Session, rng: random.Random) -> None:
    """Eight weeks of huddles, answers, votes and unanswered questions."""
    teams = session.scalars(select(Team).order_by(Team.name)).all()
    everyone = session.scalars(select(Person).order_by(Person.key)).all()
    for team in teams:
        members = [p for p in everyone if p.team_id == team.id]
        experts = [
            p
            for p in members
            if session.scalar(select(Skill.id).where(Skill.person_id == p.id).limit(1))
        ]
        for week in range(8):
            for _ in range(rng.randint(3, 9)):
                opened = NOW - timedelta(weeks=week, hours=rng.uniform(1, 160))
                asker, helper = rng.sample(members, 2)
                waited = rng.lognormvariate(5.0, 0.9)  # seconds; median about 2.5 minutes
                replied = None if rng.random() < 0.12 else opened + timedelta(seconds=waited)
                outcome = rng.random()
                state = (
                    HuddleState.OPEN
                    if week == 0 and outcome < 0.3
                    else (HuddleState.RESOLVED if outcome < 0.8 else HuddleState.EXPIRED)
                )
                closed = (
                    None
                    if state == HuddleState.OPEN
                    else opened + timedelta(hours=rng.uniform(0.2, 6))
                )
                if closed is not None and closed > NOW:
                    state, closed = HuddleState.OPEN, None
                huddle = Huddle(
                    topic=rng.choice(
                        (
                            "refund after a double top-up",
                            "roaming cap reset abroad",
                            "PUK locked after three tries",
                            "late fee waiver for a hospital stay",
                            "APN settings for a new handset",
                            "direct debit bounced twice",
                        )
                    ),
                    requester=asker,
                    team=team,
                    state=state,
                    created_at=opened,
                    first_reply_at=replied,
                    closed_at=closed,
                    ladder_step=0 if replied and waited < 180 else rng.choice((0, 1, 1, 2)),
                )
                session.add(huddle)
                chosen = rng.choice([p for p in experts if p.id != asker.id] or [helper])
                huddle.participants.append(
                    HuddleParticipant(person=chosen, invited_at=opened, first_reply_at=replied)
                )
                session.flush()
                if state == HuddleState.RESOLVED and rng.random() < 0.6:
                    entry, _ = knowledge.add_entry(
                        session,
                        f"{huddle.topic.capitalize()} (huddle #{huddle.id})",
                        "What we concluded in the huddle, step by step.",
                        [],
                        [chosen],
                    )
                    entry.huddle_id, entry.created_at = huddle.id, closed or opened
    session.flush()
    entries = session.scalars(select(KnowledgeEntry).order_by(KnowledgeEntry.id)).all()
    for entry in rng.sample(list(entries), 25):
        for voter in rng.sample(list(everyone), rng.randint(1, 6)):
            session.add(
                HelpfulVote(
                    entry_id=entry.id,
                    person_id=voter.id,
                    created_at=NOW - timedelta(days=rng.uniform(0, 25)),
                )
            )
        entry.helpful_count = rng.randint(1, 12)
    for entry in entries[:6]:
        entry.updated_at = NOW - timedelta(days=200 + entry.id)
    for text in GAP_QUESTIONS:
        for _ in range(rng.randint(1, 5)):
            asker = rng.choice(everyone)
            session.add(
                QueryLog(
                    person_id=asker.id,
                    platform="slack",
                    text=text,
                    confident=False,
                    created_at=NOW - timedelta(days=rng.uniform(0, 20)),
                )
            )


def lead_changes(session: Session) -> None:
    """A few audited changes, so the audit log and a profile's history show something."""
    priya, alex = people.by_key(session, "priya"), people.by_key(session, "alex")
    assert priya is not None and alex is not None
    expertise.tag_person(session, priya, alex, expertise.SkillSpec("refunds", 2), NOW)
    expertise.verify_skill(session, priya, alex, "late fees", NOW)


async def shoot(services: Services, chromium: str, out: Path) -> None:
    from playwright.async_api import async_playwright

    router = build_router()
    app = build_app(services, router)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=chromium)
            page = await browser.new_page(viewport={"width": 1280, "height": 900})
            reply = router.dispatch(
                Command("console", _id(services, "daniel"), "dashboard"), services
            )
            token = re.search(r"token=(\S+)", reply.elements[0].text)  # type: ignore[union-attr]
            assert token is not None
            await page.goto(f"http://127.0.0.1:{port}/dashboard/login?token={token.group(1)}")
            await page.click("button[type=submit]")
            for name, path in PAGES:
                await page.goto(f"http://127.0.0.1:{port}{path}")
                target = out / f"dashboard-{name}.png"
                await page.screenshot(path=str(target), full_page=True)
                print(f"wrote {target}")
            await browser.close()
    finally:
        await runner.cleanup()


def _id(services: Services, key: str) -> int:
    with services.db.unit_of_work() as session:
        person = people.by_key(session, key)
        assert person is not None
        return person.id


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as home:
        url = f"sqlite:///{Path(home) / 'screenshots.db'}"
        database = open_database(url)
        with database.unit_of_work() as session:
            seed_demo(session, NOW)
        with database.unit_of_work() as session:
            seed_activity(session, random.Random(7))
        with database.unit_of_work() as session:
            lead_changes(session)
        settings = Settings(database_url=url, home=Path(home), semantic=False)
        services = Services(database, settings, clock=FixedClock(NOW))
        asyncio.run(shoot(services, args.chromium, args.out))
        database.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
