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

from labgrade.runtime.triton import TritonServer

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
