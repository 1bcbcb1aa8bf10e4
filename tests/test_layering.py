"""The core and the skills never import a platform SDK; only adapters do."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PLATFORM_SDKS = ("slack_bolt", "slack_sdk", "botbuilder", "botframework", "msal", "aiohttp")


def _imports(path: Path) -> set[str]:
    """Modules `path` imports, at its top or inside functions: `from a import b` is a.b
    when that is a module of this tree, else a."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                inner = f"{node.module}.{alias.name}"
                is_module = ROOT.joinpath(*inner.split(".")).with_suffix(".py").is_file()
                names.add(inner if is_module else node.module)
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


def test_the_core_knows_neither_adapters_nor_skills() -> None:
    """Arrows point down the house: adapters → skills → bot, never back up."""
    offenders = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in ROOT.joinpath("bot").rglob("*.py")
        for name in _imports(path)
        if name.split(".")[0] in {"adapters", "skills"}
    ]
    assert offenders == []


def test_the_core_has_no_import_cycles_between_its_modules() -> None:
    """Each module of bot/ can be understood after the ones it imports."""
    modules = {
        ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): path
        for path in ROOT.joinpath("bot").rglob("*.py")
        if "migrations" not in path.parts
    }
    graph = {
        name: {other for other in _imports(path) if other in modules and other != name}
        for name, path in modules.items()
    }
    cycles = []
    state: dict[str, int] = {}

    def visit(name: str, trail: list[str]) -> None:
        state[name] = 1
        for other in sorted(graph[name]):
            if state.get(other) == 1:
                cycles.append(" → ".join([*trail[trail.index(other) :], other]))
            elif other not in state:
                visit(other, [*trail, other])
        state[name] = 2

    for name in sorted(modules):
        if name not in state:
            visit(name, [name])
    assert cycles == []
