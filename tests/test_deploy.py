"""The deployment files say what the guide says, and run commands the CLI accepts."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from adapters.cli import _parser

ROOT = Path(__file__).resolve().parent.parent
GUIDE = (ROOT / "docs" / "deploy.md").read_text()


def _whoknows_args(line: str) -> list[str]:
    line = line.replace("$PORT", "5000").replace("${WEB_CONCURRENCY:-2}", "2")
    words = shlex.split(line)
    return words[[Path(w).name for w in words].index("whoknows") + 1 :]


def test_the_unit_and_procfile_are_the_guides() -> None:
    unit = (ROOT / "deploy" / "whoknows.service").read_text()
    procfile = (ROOT / "Procfile").read_text()
    assert f"```ini\n{unit}```" in GUIDE
    assert f"```\n{procfile}```" in GUIDE


@pytest.mark.parametrize(
    "line",
    [
        re.search(r"^ExecStart=(.*)$", (ROOT / "deploy" / "whoknows.service").read_text(), re.M)[1],
        *[
            line.split(":", 1)[1]
            for line in (ROOT / "Procfile").read_text().splitlines()
            if line.strip()
        ],
    ],
)
def test_every_deployed_command_is_one_the_cli_accepts(line: str) -> None:
    args = _parser().parse_args(_whoknows_args(line))
    if args.command == "serve":
        assert args.workers >= 2
