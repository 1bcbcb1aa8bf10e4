"""Microsoft's validators, run in one Node process for the whole test session.

`tests/conformance/validate.cjs` answers one JSON line per request: the problems that
the `adaptivecards` library (parse, validate, render under jsdom) finds in a card, or
that `@microsoft/app-manifest` finds in a Teams manifest against the schema it bundles.
The Node packages are pinned in tests/package.json and tests/package-lock.json and
installed with `npm ci --prefix tests` the first time (and again when the lockfile
changes).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

import pytest

TESTS = Path(__file__).resolve().parent.parent
SCRIPT = TESTS / "conformance" / "validate.cjs"
LOCKFILE = TESTS / "package-lock.json"
INSTALLED = TESTS / "node_modules" / ".package-lock.json"  # npm writes it last


class Unavailable(Exception):
    """Node, npm or the pinned packages cannot be had here; the reason says which."""


def install_packages() -> None:
    """`npm ci --prefix tests` unless the lockfile's packages are installed already."""
    if INSTALLED.exists() and INSTALLED.stat().st_mtime >= LOCKFILE.stat().st_mtime:
        return
    npm = shutil.which("npm")
    if npm is None:
        raise Unavailable("npm not found: apt-get install nodejs npm (CI installs them)")
    done = subprocess.run(
        [npm, "ci", "--prefix", str(TESTS), "--no-audit", "--no-fund"],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if done.returncode != 0:
        raise Unavailable(f"npm ci --prefix tests failed:\n{done.stdout}\n{done.stderr}")


class Validators:
    """Requests in, problems out, in order; one process for every card of the session."""

    def __init__(self, stderr: IO[str]) -> None:
        node = shutil.which("node")
        if node is None:
            raise Unavailable("Node.js not found: apt-get install nodejs npm (CI installs them)")
        install_packages()
        self._stderr = stderr
        self._process = subprocess.Popen(
            [node, str(SCRIPT)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            encoding="utf-8",
            bufsize=1,
            env={**os.environ, "NODE_ENV": "production"},
        )
        ready = self._read()
        if "ready" not in ready:
            raise Unavailable(f"the validator did not start: {ready}")
        self.versions: dict[str, str] = ready["ready"]
        self._ids = 0

    def _read(self) -> dict[str, Any]:
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            self._stderr.flush()
            self._stderr.seek(0)
            raise RuntimeError(f"the Node validator stopped:\n{self._stderr.read()[-4000:]}")
        return json.loads(line)

    def check_all(self, kind: str, payloads: Iterable[Any]) -> list[list[str]]:
        """The problems in each payload, in order. Written from another thread while this
        one reads, so neither pipe can fill up and stall the other side."""
        requests = []
        for payload in payloads:
            self._ids += 1
            requests.append({"id": self._ids, "kind": kind, "payload": payload})
        stdin = self._process.stdin
        assert stdin is not None

        def write() -> None:
            for request in requests:
                # ensure_ascii: a lone surrogate crosses as an escape, as JSON allows.
                stdin.write(json.dumps(request) + "\n")
            stdin.flush()

        writer = threading.Thread(target=write, daemon=True)
        writer.start()
        answers = [self._read() for _ in requests]
        writer.join()
        assert [a["id"] for a in answers] == [r["id"] for r in requests], answers
        return [a["problems"] for a in answers]

    def card_problems(self, card: dict[str, Any]) -> list[str]:
        return self.check_all("card", [card])[0]

    def teams_manifest_problems(self, manifest: dict[str, Any]) -> list[str]:
        return self.check_all("teams-manifest", [manifest])[0]

    def close(self) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


@pytest.fixture(scope="session", name="microsoft")
def microsoft_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Validators]:
    """Microsoft's validators in Node. A laptop without Node skips; CI must run them."""
    log = (tmp_path_factory.mktemp("node") / "validate.stderr").open("w+", encoding="utf-8")
    try:
        validators = Validators(log)
    except Unavailable as missing:
        log.close()
        if os.environ.get("CI"):
            pytest.fail(f"CI must run Microsoft's validators: {missing}")
        pytest.skip(str(missing))
    try:
        yield validators
    finally:
        validators.close()
        log.close()
