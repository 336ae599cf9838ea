import pytest

from labgrade.fixtures import *  # noqa: F403
from labgrade.submission import Worker


@pytest.fixture(scope="package")
def grader_worker(lab):
    """A grader-owned worker: it never imports student code, so it may import graders.*"""
    worker = Worker(lab.run_dir, log_path=lab.run_dir / "grader-worker.log",
                    label="grader's worker", trusted_root=lab.lab.root)
    lab.on_close(worker.close)
    return worker.start()
