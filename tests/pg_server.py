"""A throwaway PostgreSQL server for the test suite.

The suite starts its own server so that `make test` behaves the same on a
developer machine and on a fresh CI machine. Set WHOKNOWS_TEST_POSTGRES_URL to
test against an existing server instead, or WHOKNOWS_PG_BIN to choose which
PostgreSQL installation provides the server.
"""

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Self

# PostgreSQL refuses to run as root, so as root we run it as Debian's user.
_OS_USER = "postgres"
_START_ATTEMPTS = 3
_LOG_TAIL_LINES = 30
# Durability (--no-sync, fsync...) buys nothing for a server deleted after the run.
_INITDB_OPTIONS = ("-A", "trust", "-U", "postgres", "--encoding=UTF8", "--locale=C", "--no-sync")
_SPEED_OPTIONS = "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"


def find_pg_bin() -> Path | None:
    """The directory holding initdb, pg_ctl and postgres, or None if there is none."""
    if explicit := os.environ.get("WHOKNOWS_PG_BIN"):
        return Path(explicit)
    candidates: list[Path] = []
    if shutil.which("pg_config"):
        bindir = subprocess.run(
            ["pg_config", "--bindir"], capture_output=True, text=True
        ).stdout.strip()
        if bindir:
            candidates.append(Path(bindir))
    candidates += sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda path: [int(part) for part in path.parent.name.split(".") if part.isdigit()],
        reverse=True,
    )
    if initdb := shutil.which("initdb"):
        candidates.append(Path(initdb).parent)
    # pg_config also comes with libpq-dev alone, which has no server binaries.
    return next((path for path in candidates if (path / "initdb").is_file()), None)


class TemporaryPostgres:
    """A PostgreSQL server in a temporary directory, reachable on 127.0.0.1 only.

    Use as a context manager, or call start() and stop().
    """

    def __init__(self, bin_dir: Path | None = None, *, durable: bool = False) -> None:
        # durable: keep fsync and synchronous commit, for tests that crash the server and
        # count on what it acknowledged (a fast server loses its last commits).
        self.durable = durable
        found = bin_dir or find_pg_bin()
        if found is None:
            raise RuntimeError(
                "no PostgreSQL server binaries found: install PostgreSQL "
                "(Debian: apt-get install postgresql) or set WHOKNOWS_PG_BIN"
            )
        self.bin_dir = found
        self.port: int | None = None
        self._dir: Path | None = None
        self._run_as: list[str] = []
        if os.geteuid() == 0:
            try:
                pwd.getpwnam(_OS_USER)
            except KeyError:
                raise RuntimeError(
                    f"PostgreSQL refuses to run as root and there is no {_OS_USER!r} "
                    "system user to run it as: install Debian's postgresql package "
                    "(apt-get install postgresql), or run the tests as a non-root user"
                ) from None
            self._run_as = ["runuser", "-u", _OS_USER, "--"]

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("the server is not running")
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        # Under /tmp rather than $TMPDIR: the postgres user must be able to reach
        # it, and the unix socket path must stay within its ~100-byte limit.
        self._dir = Path(tempfile.mkdtemp(prefix="whoknows-pg-", dir="/tmp"))
        try:
            if self._run_as:
                shutil.chown(self._dir, _OS_USER, _OS_USER)
            self._run("initdb", "-D", str(self._data), *_INITDB_OPTIONS)
            self._start_on_free_port()
        except BaseException:
            self.stop()
            raise

    def restart(self) -> None:
        """Restart abruptly, as after a crash, on the same port; open connections break."""
        self._pg_ctl("restart", "-l", str(self._log), "-m", "immediate")

    def stop(self) -> None:
        if self._dir is None:
            return
        try:
            # Checked instead of self.port: a start that timed out may still be running.
            if (self._data / "postmaster.pid").exists():
                self._pg_ctl("stop", "-m", "immediate")
        finally:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None
            self.port = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def _data(self) -> Path:
        assert self._dir is not None, "the server was never started"
        return self._dir / "data"

    @property
    def _log(self) -> Path:
        assert self._dir is not None, "the server was never started"
        return self._dir / "server.log"

    def _start_on_free_port(self) -> None:
        for attempt in range(1, _START_ATTEMPTS + 1):
            port = _free_port()
            self._log.unlink(missing_ok=True)
            options = (
                f"-c listen_addresses=127.0.0.1 -c port={port} "
                f"-c unix_socket_directories={self._dir} "
                + ("" if self.durable else _SPEED_OPTIONS)
            )
            try:
                self._pg_ctl("start", "-l", str(self._log), "-o", options)
            except RuntimeError as error:
                log_tail = self._log_tail()
                # Another process can take the port between _free_port() and the bind.
                if "already in use" in log_tail and attempt < _START_ATTEMPTS:
                    continue
                raise RuntimeError(f"{error}\nserver log (last lines):\n{log_tail}") from None
            self.port = port
            return

    def _pg_ctl(self, action: str, *args: str) -> None:
        self._run("pg_ctl", action, "-D", str(self._data), "-w", *args)

    def _run(self, program: str, *args: str) -> None:
        command = [*self._run_as, str(self.bin_dir / program), *args]
        # cwd: as the postgres user, root's working directory may be unreadable.
        result = subprocess.run(
            command,
            cwd=self._dir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"{' '.join(command)} failed with exit code {result.returncode}:\n"
                f"{result.stdout.strip()}"
            )

    def _log_tail(self) -> str:
        try:
            lines = self._log.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return "(no log written)"
        return "\n".join(lines[-_LOG_TAIL_LINES:])


def postgres_url_for_tests() -> tuple[str | None, TemporaryPostgres | None]:
    """A URL for the PostgreSQL tests, and the server started for it, if any.

    (url, None) for WHOKNOWS_TEST_POSTGRES_URL; (url, server) for a server
    started here, which the caller must stop(); (None, None) when no server
    binaries are installed, so the caller can skip those tests.
    """
    if url := os.environ.get("WHOKNOWS_TEST_POSTGRES_URL"):
        return url, None
    bin_dir = find_pg_bin()
    if bin_dir is None:
        return None, None
    server = TemporaryPostgres(bin_dir)
    server.start()
    return server.url, server


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
