"""The local chat, driven as a person would: a real process, lines in, text out."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
from pathlib import Path

from adapters.console.render import render
from adapters.console.translate import to_command
from bot.types import Notice, PersonCard, PresenceView, Reply, TagMatch

ROOT = Path(__file__).resolve().parents[3]


def _chat(
    home: Path, lines: list[str], *args: str, **settings: str
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "WHOKNOWS_HOME": str(home), "PYTHONIOENCODING": "utf-8", **settings}
    return subprocess.run(
        [sys.executable, "-m", "adapters.cli", "chat", *args],
        input="\n".join(lines) + "\n",
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
    )


def test_first_run_seeds_the_demo_and_answers_who_knows(tmp_path: Path) -> None:
    done = _chat(tmp_path, ["whoknows refunds", "/quit"])
    assert done.returncode == 0, done.stderr
    assert "Seeded a demo contact center" in done.stdout
    assert "You are Alex Turner (@alex" in done.stdout
    answer = done.stdout.split("Who knows about “refunds”", 1)[1]
    # Who comes first depends on who is on shift at the time of day the test runs.
    assert re.search(r"why: [✓✎] refunds level [1-5]", answer)
    assert re.search(r"knows: refunds [1-5]", answer)
    assert (tmp_path / "whoknows.db").is_file()

    again = _chat(tmp_path, ["status busy 30m", "status"])
    assert "Seeded" not in again.stdout  # seeded once
    assert "You are now busy until" in again.stdout
    assert again.stdout.count("You are busy until") == 1


def test_helpful_under_an_expert_is_pressed_by_its_number(tmp_path: Path) -> None:
    shown = _chat(tmp_path, ["whoknows refunds"]).stdout.split("Who knows about “refunds”")[1]
    # Under each card, its own button (after those of the answers shown first).
    first = re.search(r"\(@(\w+)\)[^\n]*\n(?:   [^\[\n][^\n]*\n)*   \[!(\d+) Helpful\]", shown)
    assert first, shown
    number = first.group(2)
    done = _chat(tmp_path, ["whoknows refunds", f"!{number}", f"!{number}"])
    assert done.returncode == 0, done.stderr
    assert (
        "✓ Thanks: noted that" in done.stdout and "helped. whoknows learns from it." in done.stdout
    )
    assert "You already said" in done.stdout


def test_acting_as_a_lead_to_verify_then_as_an_agent_who_may_not(tmp_path: Path) -> None:
    done = _chat(
        tmp_path,
        [
            "expertise verify @omar refunds",
            "/as priya",
            "expertise verify @omar refunds",
            "/as nobody",
            "kb top-up wrong number",
        ],
    )
    out = done.stdout
    assert "Only a lead of their team or an admin may verify Omar Haddad" in out
    assert "You are Priya Sharma (@priya, lead, Billing)" in out
    assert "Verified Omar Haddad's 'refunds'" in out
    assert "Nobody has the handle 'nobody'" in out
    assert "Refund for a prepaid top-up made to the wrong number" in out


def test_the_demo_org_shows_what_the_evidence_suggests_and_a_lead_decides_it(
    tmp_path: Path,
) -> None:
    # No reminder to re-verify yet (it would print first and number its buttons first).
    quiet = {"WHOKNOWS_REVERIFY_AFTER_DAYS": "10000"}
    lines = ["/as priya", "expertise suggestions", "!1", "expertise suggestions"]
    done = _chat(tmp_path, lines, **quiet)
    assert done.returncode == 0, done.stderr
    listed, after = done.stdout.split("You are Priya Sharma", 1)[1].split("verified at level", 1)
    # Billing's lead: two suggestions from the demo's weeks of huddle threads and answers.
    assert "Maria Santos (@maria): card payments, level 2 (not tagged)" in listed
    assert "Omar Haddad (@omar): chargebacks, level 2 (not tagged)" in listed
    assert "Evidence (3 resolved huddle threads)" in listed
    assert "Maria Santos (@maria): card payments" not in after  # accepted with !1
    assert "Omar Haddad (@omar): chargebacks" in after
    # A verified skill with no evidence for over a year, to confirm or lower.
    again = _chat(tmp_path, ["/as priya", "expertise suggestions"]).stdout
    assert "Hannah Brooks (@hannah): refunds level 2, verified" in again
    assert "Confirm (level 2)" in again
    # A self-declared skill with no answers for months says so when it is shown (Mei's
    # chargebacks, Tomasz's refunds: who is shown depends on who is at work now).
    asked = _chat(tmp_path, ["whoknows chargebacks", "whoknows refunds", "/quit"]).stdout
    assert re.search(r"level 2, self-declared, no answers on it for [23]\d\d days", asked)


def test_no_demo_starts_empty_with_the_terminal_user_as_admin(tmp_path: Path) -> None:
    done = _chat(tmp_path, ["whoknows refunds", "expertise"], "--no-demo")
    assert done.returncode == 0, done.stderr
    assert "Seeded" not in done.stdout
    assert ", admin)" in done.stdout
    assert "Nobody is tagged for this yet" in done.stdout or "knowledge gap" in done.stdout


def test_control_characters_in_user_text_never_reach_the_terminal() -> None:
    card = PersonCard(
        person_id=1,
        key="eve",
        name="Eve\x1b[2J\x1b]0;pwned\x07",
        team=None,
        presence=PresenceView("available", "available", local_time="10:00"),
        tags=(TagMatch("refunds", 4, True),),
        reason="wrote \x1b[31mred\x1b[0m",
    )
    text = render(Reply.of(card, Notice("bad\x00 input", "error")))
    assert "\x1b" not in text and "\x07" not in text and "\x00" not in text
    assert "refunds 4 ✓" in text
    assert "✗ bad input" in text


def test_translate_reads_slash_commands_and_mentions() -> None:
    ids = {"maria": 7}
    command = to_command("/expertise tag @maria @ghost refunds:4", 1, ids.get)
    assert command is not None
    assert (command.name, command.text) == ("expertise", "tag @maria @ghost refunds:4")
    assert command.mentions == {"@maria": 7}
    assert to_command("   ", 1, ids.get) is None


def test_a_reason_is_marked_verified_self_declared_or_earned() -> None:
    card = PersonCard(1, "eve", "Eve", None, PresenceView("available", "available"), reason="why")
    marks = {
        basis: render(Reply.of(dataclasses.replace(card, basis=basis))).splitlines()[-1]
        for basis in ("verified", "self-declared", "earned", "")
    }
    assert marks == {
        "verified": "   why: ✓ why",
        "self-declared": "   why: ✎ why",
        "earned": "   why: ★ why",
        "": "   why: why",
    }
