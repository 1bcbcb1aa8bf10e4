"""The core and the skills never import a platform SDK; only adapters do."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PLATFORM_SDKS = ("slack_bolt", "slack_sdk", "botbuilder", "botframework", "msal", "aiohttp")


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_core_and_skills_import_no_platform_sdk() -> None:
    offenders = []
    files = [*ROOT.joinpath("bot").rglob("*.py"), *ROOT.joinpath("skills").rglob("*.py")]
    assert len(files) > 10
    for path in files:
        for name in _imports(path):
            if name.split(".")[0] in PLATFORM_SDKS:
                offenders.append(f"{path.relative_to(ROOT)} imports {name}")
    assert offenders == []


def test_skills_do_not_know_adapters() -> None:
    for path in ROOT.joinpath("skills").rglob("*.py"):
        assert not any(name.startswith("adapters") for name in _imports(path)), path
