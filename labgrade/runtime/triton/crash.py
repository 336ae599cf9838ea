"""Crash handling for the bundled tritonserver 2.51.

Its Python backend sometimes aborts the whole server with
`boost::interprocess::lock_exception` while a stub starts (seen about 1 in 20-50 starts on
a loaded 2-core machine), and an aborted server can hang instead of exiting. Graders watch
the log and kill the server the moment it crashes, then restart it.
"""

from __future__ import annotations

import os
import re
import signal
import threading
import time

from labgrade.runtime.triton.server import TritonServer
from labgrade.scoring import GraderError

# an abort or a fatal signal of the server (SIGTERM, 15, is how it is stopped)
CRASH = re.compile(r"Signal \((?!15\))\d+\) received|terminate called")
_LOG_LINE = re.compile(r"^[IWEF]\d{4} |Signal \(|terminate called|what\(\):")


def crash_excerpt(log_text: str, lines: int = 8) -> str:
    """The last meaningful lines of a crashed server's log (no stack frames, no tables)."""
    kept = [line.strip() for line in log_text.splitlines() if _LOG_LINE.search(line)]
    return "\n".join(kept[-lines:])


class CrashWatch:
    """Watches a server's log for a crash (a background thread, every 0.1 s) and kills the
    server's process group the moment one shows: an aborted tritonserver can hang instead
    of exiting, and every request to it would wait for its timeout."""

    def __init__(self, server: TritonServer, interval: float = 0.1) -> None:
        self.server = server
        self.interval = interval
        self.crash: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="triton-crash-watch",
                                        daemon=True)
        self._thread.start()

    def _run(self) -> None:
        offset, tail = 0, ""
        while not self._stop.wait(self.interval):
            path = self.server.log_path
            if path is None:
                continue
            try:
                with open(path, "rb") as handle:
                    handle.seek(offset)
                    raw = handle.read()
            except OSError:
                continue
            offset += len(raw)
            text = tail + raw.decode("utf-8", "replace")
            if CRASH.search(text):
                time.sleep(0.2)  # let the server finish writing what it knows
                try:
                    full = path.read_text(errors="replace")
                except OSError:
                    full = text
                self.crash = crash_excerpt(full) or "the server aborted"
                pid = self.server.pid
                if pid:
                    try:
                        os.killpg(pid, signal.SIGKILL)
                    except (ProcessLookupError, PermissionError):
                        pass
                return
            tail = text[-200:]

    def close(self) -> None:
        self._stop.set()


def crash_text(server: TritonServer | None, since: int = 0) -> str | None:
    """What the server's log says about a crash (fatal signal, abort), or None; also when
    the server process is gone. `since`: only a crash logged after that offset counts."""
    if server is None or server.log_path is None:
        return None
    try:
        with open(server.log_path, "rb") as handle:
            handle.seek(since)
            text = handle.read().decode("utf-8", "replace")
    except OSError:
        text = ""
    try:
        alive = server.running()
    except AttributeError:  # stopped under our feet
        alive = False
    if CRASH.search(text) or not alive:
        return crash_excerpt(text) or "the server process exited"
    return None


def log_mark(server: TritonServer | None) -> int:
    """The server log's current size: crash_text(since=...) then reads only what follows."""
    try:
        return server.log_path.stat().st_size if server and server.log_path else 0
    except (OSError, AttributeError):
        return 0


def rerun_once_on_crash(item, state):
    """Body of a lab's `pytest_runtest_call` wrapper (use `yield from`). `state` has
    `.server`, `.crashes`, `.problem`, `recover()`, `crash_text(since)` and `log_mark()`.

    A server crash during an item is not the student's doing: if the item fails and the
    server crashed meanwhile, the item runs once more on a fresh server; a second crash
    makes it a grader error."""
    if state is None:
        return (yield)
    state.recover()  # a crash that an earlier, passing item left behind
    snapshot = _crash_snapshot(state)
    try:
        return (yield)
    except Exception as exc:  # re-raised as is unless the server crashed
        if _crashed_since(state, snapshot) is None:
            raise
        first = exc
    state.recover()
    if state.server is None:
        raise GraderError(f"tritonserver crashed during this item and could not be started "
                          f"again:\n{state.problem}") from first
    score = getattr(item, "funcargs", {}).get("score")
    if score is not None:
        score.measure(server_crashed_and_item_rerun=True)
    snapshot = _crash_snapshot(state)
    try:
        item.runtest()
    except Exception as exc:
        crash = _crashed_since(state, snapshot)
        if crash is not None:
            raise GraderError(f"tritonserver crashed during this item, twice (not caused by "
                              f"the submission as far as the grader can tell):\n{crash}") from exc
        raise
    return None


def _crash_snapshot(state) -> tuple:
    server = state.server
    return server, (state.log_mark() if server else 0), len(state.crashes)


def _crashed_since(state, snapshot: tuple) -> str | None:
    server, mark, crashes = snapshot
    crash = state.crash_text(since=mark) if server is not None and state.server is server else None
    if crash is None and len(state.crashes) > crashes:
        crash = state.crashes[-1]
    return crash
