"""Services started through labgrade.runtime.process never outlive a script that dies."""

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = """
import sys
from pathlib import Path
from labgrade.runtime.process import ManagedProcess
service = ManagedProcess([sys.executable, "-c", "import time; time.sleep(120)"],
                         name="sleeper", log_path=Path(sys.argv[1])).start()
print(service.proc.pid, flush=True)
raise RuntimeError("the script's own cleanup never ran")
"""


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except OSError:
        return False
    return state != "Z"


def test_a_service_is_stopped_when_its_script_dies_of_an_exception(tmp_path):
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "sleeper.log")],
                         capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert "RuntimeError" in out.stderr
    pid = int(out.stdout.split()[0])
    deadline = time.monotonic() + 10
    while _running(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    alive = _running(pid)
    if alive:
        os.kill(pid, 9)
    assert not alive, "the service outlived the script that started it"
