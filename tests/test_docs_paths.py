"""The paths the README and the architecture page point at are in the tree."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TOP = ("bot", "adapters", "skills", "tests", "bench", "docs", ".ci")
# `bot/runtime/outbox.py`, `adapters/slack/`, `bot.runtime.outbox` …
PATH = re.compile(r"(?<![\w./-])((?:" + "|".join(map(re.escape, TOP)) + r")/[\w./<>-]*[\w/])")
MODULE = re.compile(r"(?<![\w.])((?:bot|adapters|skills)(?:\.[a-z_]+)+)")


def pointers(text: str) -> set[str]:
    found = set()
    for code in re.findall(r"`([^`\n]+)`", text):
        found.update(m for m in PATH.findall(code) if "<" not in m and "*" not in m)
        found.update(m.replace(".", "/") for m in MODULE.findall(code))
    return found


def exists(pointer: str) -> bool:
    path = ROOT / pointer
    if path.exists() or path.with_suffix(".py").exists():
        return True
    # `bot.types.Command`: a module and a name in it.
    return "." not in path.name and path.parent.with_suffix(".py").is_file()


@pytest.mark.parametrize("page", ["README.md", "docs/architecture.md"])
def test_every_path_a_page_names_is_in_the_tree(page: str) -> None:
    text = (ROOT / page).read_text()
    named = pointers(text)
    assert len(named) > 5, "the page names the files it is about"
    assert sorted(p for p in named if not exists(p)) == []
