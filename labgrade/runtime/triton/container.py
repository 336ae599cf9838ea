"""Triton in the course's container image, through the `docker` SDK — the GPU path.

The course runs `nvcr.io/nvidia/tritonserver:24.08-py3` on a host with a Docker engine and
NVIDIA GPUs. `TritonContainer` drives that image with the same client-side API as the
embedded `TritonServer` (both are `TritonAPI`s: load/unload/model_ready/repository_index/
statistics/metrics/log_tail, http_url/grpc_url/metrics_url), so graders do not care which
one runs.

No Docker engine runs on the project's CI machines: only `container_request()`, the pure
function that builds the container request (command, ports, volumes, GPU device requests),
is tested there; the rest is kept thin on purpose. The image brings its own Python (and
numpy<2) for the Python backend, so the embedded server's environment rules do not apply.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labgrade.runtime.process import ServiceError
from labgrade.runtime.triton.api import TritonAPI
from labgrade.runtime.triton.errors import TritonError
from labgrade.runtime.triton.logfile import fresh_log_path
from labgrade.runtime.triton.net import three_free_ports

DEFAULT_IMAGE = "nvcr.io/nvidia/tritonserver:24.08-py3"
CONTAINER_REPOSITORY = "/models"
CONTAINER_HTTP_PORT, CONTAINER_GRPC_PORT, CONTAINER_METRICS_PORT = 8000, 8001, 8002
LABEL = "labgrade.service"


@dataclass(frozen=True)
class HostPorts:
    """Loopback ports on the host that the container's 8000/8001/8002 are published on."""

    http: int
    grpc: int
    metrics: int


def gpu_device_requests(gpus: str | int | Sequence[str] | None) -> list[dict[str, Any]]:
    """Docker device requests for `gpus`: "all", a count, device ids/UUIDs, or None/0."""
    if gpus is None or gpus == 0 or gpus == "" or gpus == "none":
        return []
    request: dict[str, Any] = {"driver": "nvidia", "capabilities": [["gpu"]]}
    if gpus == "all":
        request["count"] = -1
    elif isinstance(gpus, bool):
        raise ValueError(f"gpus={gpus!r}: give 'all', a count, or a list of device ids")
    elif isinstance(gpus, int):
        if gpus < 0:
            raise ValueError(f"gpus={gpus}: a GPU count must be positive (or 'all')")
        request["count"] = gpus
    elif isinstance(gpus, str):
        request["device_ids"] = [g.strip() for g in gpus.split(",") if g.strip()]
    else:
        request["device_ids"] = [str(g) for g in gpus]
    return [request]


def container_request(model_repository: Path, *, ports: HostPorts, image: str = DEFAULT_IMAGE,
                      gpus: str | int | Sequence[str] | None = "all", name: str | None = None,
                      shm_size: str = "1g", log_verbose: int = 0,
                      extra_args: Sequence[str] = (),
                      environment: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Keyword arguments for `docker.DockerClient().containers.run(**request)`. Pure.

    - the repository is bind-mounted read-only at /models (explicit mode only reads it);
    - 8000/8001/8002 are published on 127.0.0.1 only, on the given host ports;
    - `gpus` becomes NVIDIA device requests (`docker run --gpus`); without GPUs the server
      runs with `--allow-gpu-metrics=false`;
    - `shm_size` 1g: the Python backend passes tensors through /dev/shm, and Docker's
      default of 64 MB fails with a few model instances; memlock/stack ulimits as NVIDIA's
      own `docker run` lines set them;
    - detached, not auto-removed (the logs must outlive a failed start).
    """
    repository = Path(model_repository)
    if not repository.is_absolute():
        raise ValueError(f"model_repository must be an absolute path, got {repository}")
    devices = gpu_device_requests(gpus)
    command = [
        "tritonserver",
        f"--model-repository={CONTAINER_REPOSITORY}",
        "--model-control-mode=explicit",
        "--exit-timeout-secs=5",
        f"--allow-gpu-metrics={'true' if devices else 'false'}",
        f"--http-port={CONTAINER_HTTP_PORT}",
        f"--grpc-port={CONTAINER_GRPC_PORT}",
        f"--metrics-port={CONTAINER_METRICS_PORT}",
        f"--log-verbose={int(log_verbose)}",
        *[str(a) for a in extra_args],
    ]
    request: dict[str, Any] = {
        "image": image,
        "command": command,
        "detach": True,
        "ports": {
            f"{CONTAINER_HTTP_PORT}/tcp": ("127.0.0.1", ports.http),
            f"{CONTAINER_GRPC_PORT}/tcp": ("127.0.0.1", ports.grpc),
            f"{CONTAINER_METRICS_PORT}/tcp": ("127.0.0.1", ports.metrics),
        },
        "volumes": {str(repository): {"bind": CONTAINER_REPOSITORY, "mode": "ro"}},
        "shm_size": shm_size,
        "ulimits": [{"name": "memlock", "soft": -1, "hard": -1},
                    {"name": "stack", "soft": 67108864, "hard": 67108864}],
        "labels": {LABEL: "tritonserver"},
        "environment": dict(environment or {}),
    }
    if devices:
        request["device_requests"] = devices
    if name:
        request["name"] = name
    return request


def docker_available() -> tuple[bool, str]:
    """(True, "") if the docker SDK is installed and a daemon answers; else (False, why)."""
    try:
        import docker
    except ImportError:
        return False, "the `docker` Python package is not installed"
    client = None
    try:
        client = docker.from_env()
        client.ping()
    except Exception as exc:  # noqa: BLE001 - any failure means "not here"
        return False, f"no Docker engine reachable: {exc}"
    finally:
        if client is not None:
            client.close()
    return True, ""


class TritonContainer(TritonAPI):
    """The course image on a model repository, as a context manager.

    Same API as `TritonServer`; `python_env` has no meaning here (the image's Python runs
    the stubs). The container's log is saved to `log_dir/tritonserver.log` on stop.
    """

    def __init__(self, model_repository: Path, *, log_dir: Path, image: str = DEFAULT_IMAGE,
                 gpus: str | int | Sequence[str] | None = "all", startup_timeout: float = 180,
                 pull: bool = False, extra_args: Sequence[str] = (),
                 environment: Mapping[str, str] | None = None, client: Any = None) -> None:
        self.model_repository = Path(model_repository).resolve()
        if not self.model_repository.is_dir():
            raise TritonError(f"model repository {self.model_repository} is not a folder")
        self.log_dir = Path(log_dir)
        self.image = image
        self.gpus = gpus
        self.startup_timeout = float(startup_timeout)
        self.pull = pull
        self.extra_args = list(extra_args)
        self.environment = dict(environment or {})
        self._client = client
        self.container: Any = None
        self.ports: HostPorts | None = None
        self.log_path: Path | None = None
        self.startup_seconds: float | None = None
        self._saved_log = ""

    # -- addresses ----------------------------------------------------------------------
    def _ports(self) -> HostPorts:
        if self.ports is None:
            raise TritonError("the container is not started")
        return self.ports

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self._ports().http}"

    @property
    def grpc_url(self) -> str:
        return f"127.0.0.1:{self._ports().grpc}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self._ports().metrics}/metrics"

    def _strip_paths(self) -> list[str]:
        # messages name files as the server sees them, under /models
        return [CONTAINER_REPOSITORY]

    # -- lifecycle ----------------------------------------------------------------------
    def start(self) -> "TritonContainer":
        import docker

        if self.container is not None:
            raise TritonError("this TritonContainer is already started")
        try:
            client = self._client or docker.from_env()
        except docker.errors.DockerException as exc:
            raise TritonError(f"no Docker engine reachable: {exc}") from exc
        self._client = client
        self.log_path = fresh_log_path(self.log_dir)
        self.ports = HostPorts(*three_free_ports())
        try:
            if self.pull:
                client.images.pull(self.image)
            started = time.monotonic()
            self.container = client.containers.run(**container_request(
                self.model_repository, ports=self.ports, image=self.image, gpus=self.gpus,
                extra_args=self.extra_args, environment=self.environment))
            deadline = started + self.startup_timeout
            while True:
                if self.is_up():
                    self.startup_seconds = time.monotonic() - started
                    return self
                self.container.reload()
                if self.container.status in ("exited", "dead"):
                    code = self.container.attrs.get("State", {}).get("ExitCode")
                    raise ServiceError(f"the Triton container exited with code {code} "
                                       "before it was live", self.log_tail())
                if time.monotonic() > deadline:
                    raise ServiceError(f"the Triton container was not live within "
                                       f"{self.startup_timeout:.0f} s", self.log_tail())
                time.sleep(0.25)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        container = self.container
        if container is None:
            return
        try:
            try:
                container.stop(timeout=15)
            except Exception:  # noqa: BLE001 - already gone is fine
                pass
            self._saved_log = self._container_log()
            if self.log_path is not None:
                self.log_path.write_text(self._saved_log)
            try:
                container.remove(force=True)
            except Exception:  # noqa: BLE001
                pass
        finally:
            self.container = None

    def __enter__(self) -> "TritonContainer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- logs ---------------------------------------------------------------------------
    def _container_log(self) -> str:
        if self.container is None:
            return self._saved_log
        try:
            return self.container.logs(stdout=True, stderr=True).decode("utf-8", "replace")
        except Exception:  # noqa: BLE001
            return self._saved_log

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self._container_log().splitlines()[-lines:])

    def _log_mark(self) -> int:
        return len(self._container_log())

    def _log_since(self, mark: int) -> str:
        return self._container_log()[mark:]


__all__ = ["DEFAULT_IMAGE", "HostPorts", "TritonContainer", "container_request",
           "docker_available", "gpu_device_requests"]
