"""The bundled tritonserver on a model repository, as a managed process."""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from labgrade.runtime.process import ManagedProcess, ServiceError
from labgrade.runtime.triton.api import TritonAPI
from labgrade.runtime.triton.distribution import (check_python_env, find_triton,
                                                  prepare_backend_dir, python_libdir)
from labgrade.runtime.triton.errors import TritonError
from labgrade.runtime.triton.logfile import file_size, fresh_log_path, read_from
from labgrade.runtime.triton.net import three_free_ports
from labgrade.runtime.triton.processes import (SHM_PREFIX_ROOT, descendant_pids, kill_leftovers,
                                               process_group_pids, shm_segments,
                                               sweep_stale_shm)

# Variables passed from the grading process to the server and hence to student code in the
# stubs. Everything else (tokens, PYTHONPATH of the grader, VIRTUAL_ENV, ...) stays out.
_ENV_KEEP = {"HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "TERM"}
_ENV_KEEP_PREFIXES = ("LC_", "OMP_", "MKL_", "OPENBLAS_", "CUDA_", "NVIDIA_")


class TritonServer(TritonAPI):
    """The bundled tritonserver on a model repository, as a context manager.

    Nothing happens in `__init__` beyond cheap checks; `start()` (or `with`) prepares the
    backend directory, picks free loopback ports, starts the server in its own process
    group and waits until it is live. A failed start stops whatever it started.

    Defaults it sets, and why:
      --model-control-mode=explicit   graders load models one by one and read each result;
      --exit-timeout-secs=5           shutdown otherwise waits 30 s on open connections;
      --allow-gpu-metrics=false       CPU machines (allow_gpu_metrics=True on a GPU host);
      --backend-config=python,shm-region-prefix-name=<own prefix>   so its shm is findable;
      HTTP, gRPC and metrics bound to 127.0.0.1 on free ports;
      environment: PATH starts with `python_env`/bin (numpy<2; default the Triton venv),
      LD_LIBRARY_PATH = interpreter LIBDIR : nvidia_pytriton.libs, VIRTUAL_ENV set,
      PYTHONNOUSERSITE=1; the grader's other variables are not passed (student code runs in
      the stubs), except locale/thread settings (_ENV_KEEP) and `env`.

    `auto_complete_config=False` passes `--disable-auto-complete-config`: the Python backend
    then skips the extra stub it starts per load to run the model's `auto_complete_config`
    (which imports model.py, torch included, a second time). Measured on 2 CPUs with a
    PyTorch model: 5.1 s -> 1.7 s per load. Only for repositories whose config.pbtxt files
    are complete (the course image keeps auto-completion on).

    `log_dir` receives `tritonserver.log` (or `tritonserver-N.log` if taken).
    """

    def __init__(self, model_repository: Path, *, log_dir: Path,
                 python_env: Path | None = None, startup_timeout: float = 60,
                 venv: Path | None = None, extra_args: Sequence[str] = (),
                 env: Mapping[str, str] | None = None, log_verbose: int = 0,
                 allow_gpu_metrics: bool = False, auto_complete_config: bool = True,
                 stop_grace: float = 15.0, student: bool = True) -> None:
        self.model_repository = Path(model_repository).resolve()
        if not self.model_repository.is_dir():
            raise TritonError(f"model repository {self.model_repository} is not a folder")
        self.dist = find_triton(venv)
        self.python_env = Path(python_env) if python_env is not None else self.dist.venv
        check_python_env(self.python_env, self.dist.python_version)
        self.log_dir = Path(log_dir)
        self.startup_timeout = float(startup_timeout)
        self.extra_args = [str(a) for a in extra_args]
        self.extra_env = dict(env or {})
        self.log_verbose = int(log_verbose)
        self.allow_gpu_metrics = allow_gpu_metrics
        self.auto_complete_config = auto_complete_config
        self.stop_grace = stop_grace
        self.student = student  # it serves student models: it runs in the sandbox
        self.shm_prefix = f"{SHM_PREFIX_ROOT}{os.getpid()}_{secrets.token_hex(4)}_"
        self.log_path: Path | None = None
        self.startup_seconds: float | None = None
        self._process: ManagedProcess | None = None
        self._ports: tuple[int, int, int] | None = None
        self._lock = threading.Lock()

    # -- addresses ----------------------------------------------------------------------
    def _port(self, index: int) -> int:
        if self._ports is None:
            raise TritonError("the server is not started")
        return self._ports[index]

    @property
    def http_port(self) -> int:
        return self._port(0)

    @property
    def grpc_port(self) -> int:
        return self._port(1)

    @property
    def metrics_port(self) -> int:
        return self._port(2)

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def grpc_url(self) -> str:
        """host:port, as tritonclient.grpc wants it."""
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    @property
    def pid(self) -> int | None:
        proc = self._process.proc if self._process else None
        return proc.pid if proc else None

    def running(self) -> bool:
        return self._process is not None and self._process.alive()

    def pids(self) -> list[int]:
        """Server and stubs: the live processes of the server's process group."""
        return process_group_pids(self.pid) if self.pid else []

    def shm_segments(self) -> list[Path]:
        return shm_segments(self.shm_prefix)

    # -- what it runs -------------------------------------------------------------------
    def command(self, backend_dir: Path, ports: tuple[int, int, int]) -> list[str]:
        http, grpc, metrics = ports
        return [
            str(self.dist.server_bin),
            f"--model-repository={self.model_repository}",
            f"--backend-directory={backend_dir}",
            f"--cache-directory={self.dist.cache_dir}",
            "--model-control-mode=explicit",
            "--exit-timeout-secs=5",
            f"--allow-gpu-metrics={'true' if self.allow_gpu_metrics else 'false'}",
            "--http-address=127.0.0.1", f"--http-port={http}",
            "--grpc-address=127.0.0.1", f"--grpc-port={grpc}",
            "--metrics-address=127.0.0.1", f"--metrics-port={metrics}",
            f"--backend-config=python,shm-region-prefix-name={self.shm_prefix}",
            f"--log-verbose={self.log_verbose}",
            *([] if self.auto_complete_config else ["--disable-auto-complete-config"]),
            *self.extra_args,
        ]

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if k in _ENV_KEEP or k.startswith(_ENV_KEEP_PREFIXES)}
        env["PATH"] = os.pathsep.join([str(self.python_env / "bin"),
                                       os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin")])
        env["VIRTUAL_ENV"] = str(self.python_env)
        env["PYTHONNOUSERSITE"] = "1"
        env["PYTHONUNBUFFERED"] = "1"
        libdirs = [str(python_libdir(self.python_env / "bin" / "python3")), str(self.dist.libs_dir)]
        if os.environ.get("LD_LIBRARY_PATH"):
            libdirs.append(os.environ["LD_LIBRARY_PATH"])
        env["LD_LIBRARY_PATH"] = os.pathsep.join(libdirs)
        env.update(self.extra_env)
        return env

    # -- lifecycle ----------------------------------------------------------------------
    def start(self) -> "TritonServer":
        with self._lock:
            if self._process is not None:
                raise TritonError("this TritonServer is already started")
            sweep_stale_shm()
            backend_dir = prepare_backend_dir(self.dist)
            env = self.environment()
            self.log_path = fresh_log_path(self.log_dir)
        for attempt in range(3):
            ports = three_free_ports()
            self._ports = ports
            mark = file_size(self.log_path)
            self._process = ManagedProcess(self.command(backend_dir, ports), name="tritonserver",
                                           log_path=self.log_path, env=env,
                                           cwd=self.model_repository, student=self.student)
            try:
                self._process.start()
                self.startup_seconds = self._process.wait_ready(
                    self.is_up, timeout=self.startup_timeout, what="live", interval=0.05)
                return self
            except BaseException as exc:
                self.stop()
                self._ports = ports  # keep for messages
                text = read_from(self.log_path, mark)
                if not isinstance(exc, ServiceError):
                    raise
                if attempt < 2 and ("already in use" in text.lower()
                                    or "address in use" in text.lower()):
                    continue
                if "Usage: tritonserver" in text:
                    # a bad option prints the whole --help: the tail would hide the reason
                    reason = text.split("Usage: tritonserver")[0].strip()
                    raise ServiceError(f"{exc.args[0]} (it rejected its command line)",
                                       reason[-4000:]) from None
                raise
        raise AssertionError("unreachable")

    def stop(self, grace: float | None = None) -> None:
        """Stop the server and its stubs; remove this instance's shm segments.

        SIGTERM to the process group, up to `grace` s (default `stop_grace`) for Triton's
        own shutdown (it unloads the models: 2.5-3.5 s), then SIGKILL. `grace=0` skips the
        graceful part; nothing is left behind either way.
        """
        process = self._process
        if process is not None and process.proc is not None:
            pgid = process.proc.pid
            leftovers = descendant_pids(pgid)
            process.stop(grace=self.stop_grace if grace is None else grace)
            kill_leftovers(leftovers)
            # SIGKILLed stubs are reaped by init: wait until none is left running
            deadline = time.monotonic() + 5.0
            while process_group_pids(pgid) and time.monotonic() < deadline:
                time.sleep(0.02)
        self._process = None
        for path in shm_segments(self.shm_prefix):
            try:
                path.unlink()
            except OSError:
                pass

    def __enter__(self) -> "TritonServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.http_url if self._ports and self.running() else "stopped"
        return f"TritonServer({str(self.model_repository)!r}, {where})"

    # -- logs ---------------------------------------------------------------------------
    def log_tail(self, lines: int = 30) -> str:
        if self._process is not None:
            return self._process.log_tail(lines)
        if self.log_path is None:
            return ""
        return "\n".join(read_from(self.log_path, 0).splitlines()[-lines:])

    def _log_mark(self) -> int:
        return file_size(self.log_path) if self.log_path else 0

    def _log_since(self, mark: int) -> str:
        return read_from(self.log_path, mark) if self.log_path else ""

