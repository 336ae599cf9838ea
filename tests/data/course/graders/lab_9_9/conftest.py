import sys

import pytest

from labgrade.fixtures import *  # noqa: F403
from labgrade.runtime.process import ManagedProcess, free_port, http_ok


@pytest.fixture(scope="package")
def helper_service(lab):
    """A grader-owned HTTP service (stands in for an engine server in cleanup tests)."""
    port = free_port()
    service = ManagedProcess([sys.executable, "-m", "http.server", str(port), "--bind",
                              "127.0.0.1"], name="helper service",
                             log_path=lab.run_dir / "helper-service.log", cwd=lab.run_dir)
    lab.on_close(service.stop)
    service.start()
    service.wait_ready(lambda: http_ok(f"http://127.0.0.1:{port}/"), timeout=30)
    return f"http://127.0.0.1:{port}/"
