"""The images built and run for real, where a Docker daemon answers (out of scope on the
cpu profile: lab.toml [profiles.cpu.not_graded] says why)."""

from __future__ import annotations

import pytest

from labgrade import Fail, Ungradable
from labgrade.deploy.image import build_and_wait_healthy, daemon_available


@pytest.mark.points(5)
@pytest.mark.budget(1200)
def test_image_builds_and_turns_healthy(submission, settings, score):
    available, detail = daemon_available()
    if not available:
        raise Ungradable(f"this item builds and runs your images with Docker: {detail}")
    submission.require("Dockerfile")
    try:
        gateway = build_and_wait_healthy(submission.path, tag="lab_2_4-server:graded",
                                         target="server", timeout_s=900,
                                         run_kwargs={"device_requests": _one_gpu()})
    except RuntimeError as exc:
        raise Fail(f"the server image: {exc}") from None
    score.measure(seconds_to_healthy=round(gateway.seconds_to_healthy, 1))


def _one_gpu() -> list:
    import docker

    return [docker.types.DeviceRequest(count=1, capabilities=[["gpu"]])]
