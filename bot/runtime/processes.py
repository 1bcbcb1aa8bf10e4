"""What every worker process of the serving process does when it starts.

A command process and the directory's linker are both spawned children. Each
ignores Ctrl-C (it reaches the whole process group; the serving process says
when to stop), goes when its parent goes however the parent went (killed
outright, it would otherwise hold an index or a connection forever), and names
itself so that `ps`, `top` and the OOM killer's log say which one it is.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time

PARENT_CHECK_S = 1.0
# The kernel keeps fifteen bytes of a process's name.
NAME_BYTES = 15


def start_worker(name: str, parent: int | None = None) -> None:
    """Called first in a spawned worker process."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    name_process(name)
    exit_with(os.getppid() if parent is None else parent)


def name_process(name: str) -> None:
    """Shown as the process's name by `ps -o comm`, `top` and /proc (Linux only)."""
    with contextlib.suppress(OSError), open("/proc/self/comm", "w") as comm:
        comm.write(name[:NAME_BYTES])


def exit_with(parent: int) -> None:
    """Go when `parent` goes, however it went.

    Killed outright (SIGKILL, the OOM killer), the serving process leaves its
    workers waiting for work forever; a supervisor that restarts it would pile
    them up.
    """

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_S)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
