"""Moved to `labgrade.runtime.triton.container`; this name stays importable until nothing
imports it (README.md still names it)."""

from labgrade.runtime.triton.container import (DEFAULT_IMAGE, HostPorts, TritonContainer,
                                               container_request, docker_available,
                                               gpu_device_requests)

__all__ = ["DEFAULT_IMAGE", "HostPorts", "TritonContainer", "container_request",
           "docker_available", "gpu_device_requests"]
