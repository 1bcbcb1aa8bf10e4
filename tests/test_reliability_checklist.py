"""Every item of docs/reliability.md keeps a test: the reliability(n) markers cover 1..30."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _marked() -> dict[int, list[str]]:
    found: dict[int, list[str]] = {}
    for path in (ROOT / "tests").rglob("test_*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for decorator in node.decorator_list:
                if (
                    isinstance(decorator, ast.Call)
                    and isinstance(decorator.func, ast.Attribute)
                    and decorator.func.attr == "reliability"
                ):
                    for arg in decorator.args:
                        assert isinstance(arg, ast.Constant), f"{path}:{node.name}"
                        found.setdefault(int(arg.value), []).append(f"{path.name}::{node.name}")
    return found


def test_every_checklist_item_has_a_test() -> None:
    items = re.findall(r"^\| (\d+) \|", (ROOT / "docs" / "reliability.md").read_text(), re.M)
    assert [int(n) for n in items] == list(range(1, 31))
    marked = _marked()
    assert sorted(marked) == list(range(1, 31)), sorted(set(range(1, 31)) - set(marked))
