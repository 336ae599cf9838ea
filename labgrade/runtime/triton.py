"""NVIDIA Triton Inference Server for graders, without Docker.

The wheel `nvidia-pytriton==0.7.0` bundles a real `tritonserver` (2.51) and its Python
backend. labgrade does not use pytriton's Python API: it runs the bundled binary against an
ordinary model repository (the student's), in explicit model-control mode, as a
`ManagedProcess`. `scripts/setup-triton-env.sh` creates the environment that holds the
wheel (`.venv-triton`, or `$LABGRADE_TRITON_VENV`); the grading process itself only needs
the standard library (plus `prometheus_client` for `metrics()` and `tritonclient` for the
convenience clients).

What the server needs, and why (DESIGN.md, "Triton Inference Server without Docker"):

- a backend directory whose `python/` holds `libtriton_python.so`,
  `triton_python_backend_utils.py` and the stub built for the running Python minor version
  (`python_backend_stubs/3.X/triton_python_backend_stub` in the wheel); it is assembled once
  under `$LABGRADE_CACHE/triton/` (`prepare_backend_dir`);
- `LD_LIBRARY_PATH` starting with the interpreter's `sysconfig` LIBDIR (otherwise the stub
  may load the system's libpython and break), then the wheel's `nvidia_pytriton.libs`;
- the Python environment the stub embeds is the first `python3` on `PATH`: it must have
  numpy<2, or the server answers with EMPTY outputs and no error. The triton venv is the
  default; `python_env=` names another venv (checked for numpy<2 before start);
- `--exit-timeout-secs=5` (shutdown otherwise waits 30 s on open client connections),
  `--allow-gpu-metrics=false`; the CUDA/NVML error lines a CPU-only start logs are harmless;
- in explicit mode `/v2/health/ready` stays false while any model failed to load, so
  readiness here is liveness (plus the metrics and gRPC ports accepting connections) and
  models are checked one by one (`model_ready`).

Each Python model instance runs in a stub process (same process group as the server) and
shares a 1 MiB-and-growing POSIX shared-memory region with it, named
`/dev/shm/<prefix><uuid4>`; Triton's default prefix is `triton_python_backend_shm_region_`.
Every `TritonServer` passes its own prefix, `labgrade_triton_<grader pid>_<random hex>_`,
so that `stop()` removes exactly its own leftovers (a stub killed by SIGKILL leaks its
region) and `sweep_stale_shm()` can remove regions of grading processes that died.

Exceptions::

    TritonError (RuntimeError)
     ├── TritonNotInstalled      the Triton environment or a bundled file is missing
     └── TritonRequestError      an API call answered with an error (status, server text)
          └── ModelLoadError     a model did not load: the server's reason, made readable

Start-up failures (the server exited or never became live) raise
`labgrade.runtime.process.ServiceError`, whose message carries the tail of the server log.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from labgrade.runtime.process import ManagedProcess, ServiceError, free_port
from labgrade.runtime.tinymodels import cache_root

PYTRITON_VERSION = "0.7.0"
VENV_ENV_VAR = "LABGRADE_TRITON_VENV"
SHM_DIR = Path("/dev/shm")
SHM_PREFIX_ROOT = "labgrade_triton_"
DEFAULT_TRITON_SHM_PREFIX = "triton_python_backend_shm_region_"
SETUP_HINT = "run `make setup` (or scripts/setup-triton-env.sh) to create it"

_REPO_ROOT = Path(__file__).resolve().parents[2]

# Variables passed from the grading process to the server and hence to student code in the
# stubs. Everything else (tokens, PYTHONPATH of the grader, VIRTUAL_ENV, ...) stays out.
_ENV_KEEP = {"HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "TERM"}
_ENV_KEEP_PREFIXES = ("LC_", "OMP_", "MKL_", "OPENBLAS_", "CUDA_", "NVIDIA_")


# --------------------------------------------------------------------------------------
# exceptions
# --------------------------------------------------------------------------------------
class TritonError(RuntimeError):
    """Base class of everything this module raises besides `ServiceError`."""


class TritonNotInstalled(TritonError):
    """The Triton environment (or a file the server needs) is missing."""


class TritonRequestError(TritonError):
    """A Triton API call failed. `status` is the HTTP status (0: no answer)."""

    def __init__(self, message: str, *, status: int = 0, server_message: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.server_message = server_message


class ModelLoadError(TritonRequestError):
    """A model did not load.

    `str(error)` is written for a student: which model, why (the server's own reason, e.g.
    the exception and the `model.py(line)` their `initialize()` raised, or the line and
    column of a config.pbtxt syntax error), with the repository path stripped.

    Attributes: `model`; `reason` (that explanation without the headline);
    `server_message` (the raw error text of the API answer); `log_lines` (the server log
    lines about this load); `status` (HTTP status, 0 for a timeout).
    """

    def __init__(self, model: str, reason: str, *, status: int = 0, server_message: str = "",
                 log_lines: Sequence[str] = ()) -> None:
        self.model = model
        self.reason = reason
        self.log_lines = list(log_lines)
        super().__init__(f"Triton could not load model '{model}':\n{_indent(reason)}",
                         status=status, server_message=server_message)


# --------------------------------------------------------------------------------------
# the bundled server
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TritonDistribution:
    """Where the pytriton wheel of a venv keeps the server and the Python backend."""

    venv: Path
    python: Path              # <venv>/bin/python3
    python_version: str       # "3.11": picks the stub
    package_dir: Path         # site-packages/pytriton
    server_bin: Path          # .../tritonserver/bin/tritonserver
    libs_dir: Path            # site-packages/nvidia_pytriton.libs
    python_backend_dir: Path  # .../tritonserver/backends/python
    stub: Path                # .../python_backend_stubs/3.X/triton_python_backend_stub
    cache_dir: Path           # .../tritonserver/caches (response-cache implementations)

    @property
    def python_libdir(self) -> Path:
        """`sysconfig` LIBDIR of the venv's interpreter (goes first on LD_LIBRARY_PATH)."""
        return python_libdir(self.python)


def default_triton_venv() -> Path:
    """`$LABGRADE_TRITON_VENV`, else `<repo>/.venv-triton` (what `make setup` creates)."""
    configured = os.environ.get(VENV_ENV_VAR)
    if configured:
        return Path(configured).expanduser()
    return _REPO_ROOT / ".venv-triton"


def find_triton(venv: Path | None = None) -> TritonDistribution:
    """Locate the bundled tritonserver in a venv with nvidia-pytriton; raise if absent."""
    venv = Path(venv) if venv is not None else default_triton_venv()
    python = venv / "bin" / "python3"
    if not python.exists():
        raise TritonNotInstalled(f"no Triton environment at {venv}: {SETUP_HINT}")
    version = _venv_python_version(venv)
    packages = sorted(venv.glob(f"lib/python{version}/site-packages/pytriton"))
    if not packages:
        raise TritonNotInstalled(
            f"{venv} has no nvidia-pytriton=={PYTRITON_VERSION} (no site-packages/pytriton): "
            f"{SETUP_HINT}")
    package_dir = packages[0]
    server_root = package_dir / "tritonserver"
    dist = TritonDistribution(
        venv=venv, python=python, python_version=version, package_dir=package_dir,
        server_bin=server_root / "bin" / "tritonserver",
        libs_dir=package_dir.parent / "nvidia_pytriton.libs",
        python_backend_dir=server_root / "backends" / "python",
        stub=server_root / "python_backend_stubs" / version / "triton_python_backend_stub",
        cache_dir=server_root / "caches",
    )
    for path in (dist.server_bin, dist.python_backend_dir / "libtriton_python.so",
                 dist.python_backend_dir / "triton_python_backend_utils.py", dist.stub):
        if not path.is_file():
            raise TritonNotInstalled(f"the pytriton wheel in {venv} lacks {path}: {SETUP_HINT}")
    return dist


def triton_available(venv: Path | None = None) -> tuple[bool, str]:
    """(True, "") if the embedded server can run, else (False, why). For skips."""
    try:
        find_triton(venv)
    except TritonNotInstalled as exc:
        return False, str(exc)
    return True, ""


def _venv_python_version(venv: Path) -> str:
    """'3.11' from pyvenv.cfg (no interpreter start); falls back to the lib/ folder."""
    try:
        for line in (venv / "pyvenv.cfg").read_text().splitlines():
            key, _, value = line.partition("=")
            if key.strip() in ("version", "version_info"):
                major, minor = value.strip().split(".")[:2]
                return f"{major}.{minor}"
    except (OSError, ValueError):
        pass
    found = sorted(p.name.removeprefix("python") for p in venv.glob("lib/python3.*"))
    if not found:
        raise TritonNotInstalled(f"cannot tell the Python version of {venv}: {SETUP_HINT}")
    return found[-1]


@lru_cache(maxsize=8)
def python_libdir(python: Path) -> Path:
    """`sysconfig.get_config_var('LIBDIR')` of an interpreter (a venv gives its base's)."""
    out = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_config_var('LIBDIR'))"],
        capture_output=True, text=True, timeout=60, check=False)
    if out.returncode != 0 or not out.stdout.strip():
        raise TritonNotInstalled(f"{python} does not run: {out.stderr.strip()[-500:]}")
    return Path(out.stdout.strip())


def prepare_backend_dir(dist: TritonDistribution, root: Path | None = None) -> Path:
    """A backend directory for `--backend-directory`, built once and cached.

    Holds `python/libtriton_python.so`, `python/triton_python_backend_utils.py` and
    `python/triton_python_backend_stub` (the stub for `dist.python_version`). The folder is
    keyed by the source files, built in a temporary folder and renamed into place, so
    concurrent graders never see half of it.
    """
    sources = {
        "libtriton_python.so": dist.python_backend_dir / "libtriton_python.so",
        "triton_python_backend_utils.py":
            dist.python_backend_dir / "triton_python_backend_utils.py",
        "triton_python_backend_stub": dist.stub,
    }
    digest = hashlib.sha256()
    for name, src in sorted(sources.items()):
        stat = src.stat()
        digest.update(f"{name}\0{src.resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}\0".encode())
    root = Path(root) if root is not None else cache_root() / "triton"
    target = root / f"backends-py{dist.python_version}-{digest.hexdigest()[:16]}"
    if all((target / "python" / name).is_file() for name in sources):
        return target
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(_mkdtemp(root, ".backends-"))
    try:
        (tmp / "python").mkdir()
        for name, src in sources.items():
            shutil.copy2(src, tmp / "python" / name)
        (tmp / "python" / "triton_python_backend_stub").chmod(0o755)
        try:
            os.rename(tmp, target)
        except OSError:
            if not (target / "python" / "triton_python_backend_stub").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _mkdtemp(parent: Path, prefix: str) -> str:
    import tempfile
    return tempfile.mkdtemp(prefix=prefix, dir=parent)


def check_python_env(python_env: Path, python_version: str) -> None:
    """Raise TritonError unless `python_env` can host the Python backend stub.

    Cheap (no interpreter start): the venv's Python minor version must match the stub's,
    and its numpy must be 1.x (numpy 2 makes the server return empty outputs silently).
    """
    python_env = Path(python_env)
    if not (python_env / "bin" / "python3").exists():
        raise TritonError(f"python_env {python_env} has no bin/python3 (expected a venv)")
    version = _venv_python_version(python_env)
    if version != python_version:
        raise TritonError(
            f"python_env {python_env} is Python {version}, but the Triton stub is built for "
            f"Python {python_version}: make the environment with python{python_version}")
    dists = sorted(python_env.glob(f"lib/python{version}/site-packages/numpy-*.dist-info"))
    if not dists:
        raise TritonError(f"python_env {python_env} has no numpy: the Python backend needs "
                          "numpy<2 (pip install 'numpy<2')")
    numpy_version = dists[-1].name.removeprefix("numpy-").removesuffix(".dist-info")
    if int(numpy_version.split(".")[0]) >= 2:
        raise TritonError(
            f"python_env {python_env} has numpy {numpy_version}; Triton's Python backend "
            "returns empty outputs with numpy 2 and reports no error: install 'numpy<2'")


# --------------------------------------------------------------------------------------
# metrics
# --------------------------------------------------------------------------------------
_MISSING: Any = object()


class Metrics:
    """One scrape of the metrics endpoint, parsed with prometheus_client.

    `value(name, **labels)` sums the samples called `name` whose labels include the given
    ones (so `value("nv_inference_count", model="add")` adds all versions); `samples()`
    lists them; `families` is the parser's own output by family name.

    Names are the ones on the wire (Triton's docs, PromQL): prometheus_client's parser
    renames the samples of a counter family `x` to `x_total`, so a counter's family name
    finds its `_total` samples here. Histogram parts are asked for by their sample names
    (`x_bucket`, `x_sum`, `x_count`).
    """

    def __init__(self, text: str) -> None:
        from prometheus_client.parser import text_string_to_metric_families

        self.text = text
        self.families = {family.name: family for family in text_string_to_metric_families(text)}
        self._by_sample: dict[str, list] = {}
        for family in self.families.values():
            for sample in family.samples:
                self._by_sample.setdefault(sample.name, []).append(sample)
        for family in self.families.values():
            if family.type == "counter" and family.name not in self._by_sample:
                self._by_sample[family.name] = [
                    s for s in family.samples if s.name == family.name + "_total"]

    def names(self) -> list[str]:
        return sorted(self._by_sample)

    def samples(self, name: str, **labels: str) -> list:
        return [s for s in self._by_sample.get(name, []) if _labels_match(s.labels, labels)]

    def value(self, name: str, default: float = _MISSING, **labels: str) -> float:
        """Sum of the matching samples; `default` (if given) when none matches."""
        found = self.samples(name, **labels)
        if found:
            return float(sum(s.value for s in found))
        if default is not _MISSING:
            return default
        known = sorted({json.dumps(s.labels, sort_keys=True)
                        for s in self._by_sample.get(name, [])})
        if not known:
            raise KeyError(f"no metric {name!r} in the scrape")
        raise KeyError(f"no sample of {name!r} with labels {labels}; present: {', '.join(known)}")


def sample_value(families: Mapping[str, Any] | Iterable[Any], name: str,
                 labels: Mapping[str, str] | None = None,
                 default: float | None = None) -> float | None:
    """Sum of samples `name` with `labels` in parsed families (e.g. from
    `text_string_to_metric_families`); `default` when none matches."""
    if isinstance(families, Mapping):
        families = families.values()
    total, hit = 0.0, False
    for family in families:
        # prometheus_client calls the samples of counter `x` `x_total`: accept either name
        wanted = {name}
        if family.type == "counter" and family.name == name:
            wanted.add(name + "_total")
        for sample in family.samples:
            if sample.name in wanted and _labels_match(sample.labels, labels or {}):
                total += sample.value
                hit = True
    return total if hit else default


def _labels_match(have: Mapping[str, str], want: Mapping[str, str]) -> bool:
    return all(have.get(key) == str(value) for key, value in want.items())


# --------------------------------------------------------------------------------------
# model configuration text
# --------------------------------------------------------------------------------------
def model_config_json(config: str | Mapping[str, Any]) -> str:
    """A model configuration as the JSON string Triton's load API takes.

    Accepts a dict, a JSON string, or config.pbtxt text (protobuf text format, parsed with
    tritonclient's `model_config_pb2`). A pbtxt syntax error raises ValueError with the
    line and column.
    """
    if isinstance(config, Mapping):
        return json.dumps(config)
    text = config.strip()
    if text.startswith("{"):
        json.loads(text)  # validate early; the server's message for bad JSON is vaguer
        return text
    return json.dumps(parse_model_config(text))


def parse_model_config(text: str) -> dict[str, Any]:
    """config.pbtxt text -> dict (protobuf field names). Read student configs as data."""
    from google.protobuf import json_format, text_format
    from tritonclient.grpc import model_config_pb2

    try:
        message = text_format.Parse(text, model_config_pb2.ModelConfig())
    except text_format.ParseError as exc:
        raise ValueError(f"config.pbtxt does not parse: {exc}") from exc
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


# --------------------------------------------------------------------------------------
# the client side, shared by the embedded server and the container
# --------------------------------------------------------------------------------------
class TritonAPI:
    """Client-side methods over Triton's HTTP/REST API (KServe v2 plus extensions).

    Subclasses provide `http_url`, `grpc_url`, `metrics_url`, `model_repository` and the log
    hooks `log_tail()`, `_log_mark()`, `_log_since(mark)`.
    """

    request_timeout: float = 30.0
    model_repository: Path | None = None

    # -- to provide ---------------------------------------------------------------------
    @property
    def http_url(self) -> str:
        raise NotImplementedError

    @property
    def grpc_url(self) -> str:
        raise NotImplementedError

    @property
    def metrics_url(self) -> str:
        raise NotImplementedError

    def log_tail(self, lines: int = 30) -> str:
        raise NotImplementedError

    def log_text(self) -> str:
        """The whole server log so far."""
        return self._log_since(0)

    def _log_mark(self) -> int:
        return 0

    def _log_since(self, mark: int) -> str:
        return ""

    def _strip_paths(self) -> list[str]:
        """Path prefixes removed from error messages (students see repository-relative)."""
        return [str(self.model_repository)] if self.model_repository else []

    # -- plumbing -----------------------------------------------------------------------
    def _call(self, method: str, path: str, body: Any = None, *,
              timeout: float | None = None) -> tuple[int, Any]:
        """One API call: (status, decoded JSON or None). Raises only if nothing answered."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.http_url + path, data=data, method=method,
            headers={"Content-Type": "application/json"} if data is not None else {})
        try:
            with _OPENER.open(request, timeout=timeout or self.request_timeout) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        except (urllib.error.URLError, OSError) as exc:
            message = (f"Triton at {self.http_url} did not answer {method} {path}: "
                       f"{getattr(exc, 'reason', exc)}")
            try:
                tail = self.log_tail(15)
            except Exception:  # noqa: BLE001 - the log is a bonus here
                tail = ""
            if tail:
                message += f"\n--- last lines of the server log ---\n{tail}"
            raise TritonRequestError(message) from exc
        if not raw:
            return status, None
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, raw.decode("utf-8", "replace")

    def _checked(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        status, payload = self._call(method, path, body, **kw)
        if not 200 <= status < 300:
            message = _error_text(payload)
            raise TritonRequestError(f"{method} {path} -> HTTP {status}: {message}",
                                     status=status, server_message=message)
        return payload

    # -- health and metadata ------------------------------------------------------------
    def live(self) -> bool:
        return _get_ok(self.http_url + "/v2/health/live")

    def server_metadata(self) -> dict:
        return self._checked("GET", "/v2")

    # -- model control ------------------------------------------------------------------
    def load(self, model: str, config: str | Mapping[str, Any] | None = None, *,
             timeout: float = 300.0) -> float:
        """Load (or reload) `model`; return seconds taken. Raise ModelLoadError with the
        server's reason if it does not load.

        `config` overrides the repository's config.pbtxt: a dict, JSON text, or pbtxt text.
        """
        body = None
        if config is not None:
            try:
                body = {"parameters": {"config": model_config_json(config)}}
            except ValueError as exc:
                raise ModelLoadError(model, str(exc)) from exc
        mark = self._log_mark()
        started = time.monotonic()
        try:
            status, payload = self._call("POST", f"/v2/repository/models/{_q(model)}/load",
                                         body, timeout=timeout)
        except TritonRequestError as exc:
            if isinstance(exc.__cause__, (TimeoutError, socket.timeout)) or "timed out" in str(exc):
                raise ModelLoadError(
                    model, f"loading did not finish within {timeout:.0f} s (does initialize() "
                    "block or take too long?)",
                    log_lines=self._load_log_lines(model, mark)) from exc
            raise
        elapsed = time.monotonic() - started
        if 200 <= status < 300:
            return elapsed
        server_message = _error_text(payload)
        log_lines = self._load_log_lines(model, mark, wait=True)
        reason = explain_load_failure(model, server_message, log_lines,
                                      repository=self._strip_paths())
        raise ModelLoadError(model, reason, status=status, server_message=server_message,
                             log_lines=log_lines)

    def load_all(self, models: Iterable[str], *, parallel: bool = True,
                 timeout: float = 300.0) -> dict[str, float]:
        """Load several models (concurrently by default); seconds per model. If some fail,
        raise the ModelLoadError of the first one (in the given order) after all finished."""
        models = list(models)
        if not parallel or len(models) < 2:
            return {m: self.load(m, timeout=timeout) for m in models}
        with ThreadPoolExecutor(max_workers=min(8, len(models))) as pool:
            futures = {m: pool.submit(self.load, m, timeout=timeout) for m in models}
            results: dict[str, float] = {}
            first_error: BaseException | None = None
            for model, future in futures.items():
                try:
                    results[model] = future.result()
                except BaseException as exc:  # noqa: BLE001 - re-raised below
                    first_error = first_error or exc
        if first_error is not None:
            raise first_error
        return results

    def unload(self, model: str, *, unload_dependents: bool = False, wait: bool = True,
               timeout: float = 60.0) -> None:
        """Unload `model`; with `wait`, return only once no version of it is loaded."""
        body = {"parameters": {"unload_dependents": True}} if unload_dependents else None
        self._checked("POST", f"/v2/repository/models/{_q(model)}/unload", body)
        if not wait:
            return
        deadline = time.monotonic() + timeout
        while True:
            states = [e.get("state") for e in self.repository_index() if e.get("name") == model]
            if not any(s in ("READY", "LOADING", "UNLOADING") for s in states):
                return
            if time.monotonic() > deadline:
                raise TritonRequestError(
                    f"model '{model}' still {states} {timeout:.0f} s after unload")
            time.sleep(0.05)

    def model_ready(self, model: str, version: str = "") -> bool:
        status, _ = self._call("GET", _model_path(model, version) + "/ready")
        return status == 200

    def model_config(self, model: str, version: str = "") -> dict:
        """The configuration the server uses (after auto-completion)."""
        return self._checked("GET", _model_path(model, version) + "/config")

    def model_metadata(self, model: str, version: str = "") -> dict:
        return self._checked("GET", _model_path(model, version))

    def repository_index(self, *, ready_only: bool = False) -> list[dict]:
        """Every model of the repository: {name, version?, state?, reason?}."""
        return self._checked("POST", "/v2/repository/index", {"ready": bool(ready_only)}) or []

    def statistics(self, model: str = "", version: str = "") -> dict:
        """`/v2/models[/<model>[/versions/<v>]]/stats`: {"model_stats": [...]} with
        inference_count, execution_count, inference_stats.{success,fail,queue,...}.{count,ns}."""
        path = _model_path(model, version) if model else "/v2/models"
        return self._checked("GET", path + "/stats")

    # -- metrics ------------------------------------------------------------------------
    def metrics_text(self) -> str:
        try:
            with _OPENER.open(self.metrics_url, timeout=self.request_timeout) as resp:
                return resp.read().decode("utf-8", "replace")
        except (urllib.error.URLError, OSError) as exc:
            raise TritonRequestError(f"no metrics from {self.metrics_url}: {exc}") from exc

    def metrics(self) -> Metrics:
        return Metrics(self.metrics_text())

    # -- clients ------------------------------------------------------------------------
    def http_client(self, **kwargs: Any):
        """A `tritonclient.http.InferenceServerClient` for this server."""
        import tritonclient.http as httpclient
        return httpclient.InferenceServerClient(url=self.http_url.removeprefix("http://"), **kwargs)

    def grpc_client(self, **kwargs: Any):
        """A `tritonclient.grpc.InferenceServerClient` for this server."""
        import tritonclient.grpc as grpcclient
        return grpcclient.InferenceServerClient(url=self.grpc_url, **kwargs)

    # -- helpers ------------------------------------------------------------------------
    def _load_log_lines(self, model: str, mark: int, wait: bool = False) -> list[str]:
        """Server log lines about `model` written since `mark` (errors, decoded)."""
        deadline = time.monotonic() + (1.0 if wait else 0.0)
        while True:
            lines = relevant_log_lines(self._log_since(mark), model)
            if lines or time.monotonic() >= deadline:
                return lines
            time.sleep(0.05)


# Loopback calls never go through an HTTP proxy from the environment (urllib's default).
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _get_ok(url: str, timeout: float = 2.0) -> bool:
    try:
        with _OPENER.open(url, timeout=timeout) as response:
            return 200 <= response.status < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _q(part: str) -> str:
    return urllib.parse.quote(str(part), safe="")


def _model_path(model: str, version: str = "") -> str:
    return f"/v2/models/{_q(model)}" + (f"/versions/{_q(version)}" if version else "")


def _error_text(payload: Any) -> str:
    if isinstance(payload, dict) and "error" in payload:
        return str(payload["error"])
    return "" if payload is None else str(payload)


def _indent(text: str, prefix: str = "  ") -> str:
    return "\n".join(prefix + line if line.strip() else line for line in text.splitlines())


# --------------------------------------------------------------------------------------
# turning the server's words into feedback
# --------------------------------------------------------------------------------------
_GLOG = re.compile(r"^([IWEF])\d{4} [\d:.]+\s+\d+\s+[\w.\-]+:\d+\]\s?(.*)$")
_PROTOBUF = re.compile(r"^\[libprotobuf (?:ERROR|WARNING|FATAL)[^\]]*\]\s*(.*)$")
_PARSE_POS = re.compile(r"Error parsing text-format inference\.ModelConfig:\s*(\d+):(\d+):\s*(.*)")
_VERSION_FAIL = re.compile(
    r"version (\d+) is at UNAVAILABLE state: (.*?)"
    r"(?=;\s*version \d+ is at UNAVAILABLE state:|;?\s*$)", re.S)


def _decode_log_message(message: str) -> str:
    message = message.strip()
    if len(message) >= 2 and message[0] == '"' and message[-1] == '"':
        try:
            return json.loads(message)
        except ValueError:
            return message[1:-1].replace("\\n", "\n").replace('\\"', '"')
    return message


def relevant_log_lines(log_text: str, model: str) -> list[str]:
    """Warning/error lines of a Triton log that concern `model`, decoded.

    A config.pbtxt syntax error is logged by protobuf on its own line, without the model's
    name, right before Triton's "Poll failed for model directory '<model>'" line: such lines
    are kept when the next Triton line names the model.
    """
    # 'model' (quoted), model_0_0 (an instance), model:1 (a version)
    name = re.escape(model)
    names_it = re.compile(rf"'{name}'|(?<![\w.\-]){name}(?:_\d+_\d+|:\d+)")
    kept: list[str] = []
    pending: list[str] = []
    for raw in log_text.splitlines():
        proto = _PROTOBUF.match(raw)
        if proto:
            pending.append(proto.group(1).strip())
            continue
        glog = _GLOG.match(raw)
        if not glog:
            continue
        severity, message = glog.group(1), _decode_log_message(glog.group(2))
        if names_it.search(message):
            kept.extend(pending)
            if severity in "WEF":
                kept.append(message)
        pending = []
    return kept


def explain_load_failure(model: str, server_message: str, log_lines: Sequence[str] = (),
                         repository: Path | str | Sequence[Path | str] | None = None) -> str:
    """The reason a model did not load, written for a student (no headline)."""
    parts: list[str] = []
    versions = list(_VERSION_FAIL.finditer(server_message))
    for match in versions:
        reason = match.group(2).strip().rstrip(";").strip()
        reason = re.sub(r"^Internal: ", "", reason)
        parts.append(f"version {match.group(1)}: {reason}" if len(versions) > 1 else reason)
    if not parts:
        headline = server_message.strip()
        headline = re.sub(rf"^failed to load {re.escape(repr(model))},\s*", "", headline)
        if headline:
            parts.append(headline)
        for line in log_lines:
            pos = _PARSE_POS.search(line)
            if pos:
                parts.append(f"{model}/config.pbtxt line {pos.group(1)}, column {pos.group(2)}: "
                             f"{pos.group(3).strip()}")
            elif line not in server_message:
                parts.append(re.sub(r"^E\d+ ", "", line))
        if "failed to poll" in server_message and len(parts) == 1:
            parts.append(f"(is there a folder '{model}' with a valid config.pbtxt in the "
                         "model repository?)")
    text = "\n".join(parts) or "the server gave no reason; see its log"
    text = text.replace("\n\nAt:\n", "\nAt:\n")
    for root in _repository_prefixes(repository):
        text = text.replace(root, "")
    return text.strip()


def _repository_prefixes(repository: Path | str | Sequence[Path | str] | None) -> list[str]:
    if repository is None:
        return []
    roots = [repository] if isinstance(repository, (str, Path)) else list(repository)
    forms: set[str] = set()
    for root in roots:
        forms.add(str(Path(root)).rstrip("/") + "/")
        try:
            forms.add(str(Path(root).resolve()).rstrip("/") + "/")
        except OSError:
            pass
    return sorted(forms, key=len, reverse=True)


# --------------------------------------------------------------------------------------
# processes and shared memory
# --------------------------------------------------------------------------------------
def _proc_stat(pid: int) -> tuple[str, int, int, int] | None:
    """(state, ppid, pgrp, starttime) from /proc/<pid>/stat, or None if gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rfind(")") + 2:].split()
    return fields[0], int(fields[1]), int(fields[2]), int(fields[19])


def _all_pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def process_group_pids(pgid: int, *, include_zombies: bool = False) -> list[int]:
    """Processes whose process group is `pgid` (zombies left out unless asked)."""
    found = []
    for pid in _all_pids():
        stat = _proc_stat(pid)
        if stat and stat[2] == pgid and (include_zombies or stat[0] != "Z"):
            found.append(pid)
    return sorted(found)


def descendant_pids(root: int) -> list[tuple[int, int]]:
    """(pid, starttime) of every live descendant of `root`."""
    children: dict[int, list[tuple[int, int]]] = {}
    for pid in _all_pids():
        stat = _proc_stat(pid)
        if stat and stat[0] != "Z":
            children.setdefault(stat[1], []).append((pid, stat[3]))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child[0])
    return found


def shm_segments(prefix: str) -> list[Path]:
    """POSIX shared-memory segments under /dev/shm whose name starts with `prefix`."""
    if not prefix or "/" in prefix:
        raise ValueError(f"bad shm prefix {prefix!r}")
    return sorted(Path(p) for p in glob.glob(str(SHM_DIR / (glob.escape(prefix) + "*"))))


def sweep_stale_shm() -> list[Path]:
    """Remove labgrade Triton shm segments of grading processes that no longer exist.

    Names are `labgrade_triton_<grader pid>_<hex>_<uuid>`; a segment is removed only if
    that pid is gone, so servers of live graders (and other users' Triton) are untouched.
    """
    removed = []
    for path in SHM_DIR.glob(SHM_PREFIX_ROOT + "*"):
        match = re.match(re.escape(SHM_PREFIX_ROOT) + r"(\d+)_[0-9a-f]+_", path.name)
        if match and _proc_stat(int(match.group(1))) is None:
            try:
                path.unlink()
                removed.append(path)
            except OSError:
                pass
    return removed


# --------------------------------------------------------------------------------------
# the embedded server
# --------------------------------------------------------------------------------------
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
                 stop_grace: float = 15.0) -> None:
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
            self.log_path = _fresh_log_path(self.log_dir)
        for attempt in range(3):
            ports = _three_free_ports()
            self._ports = ports
            mark = _file_size(self.log_path)
            self._process = ManagedProcess(self.command(backend_dir, ports), name="tritonserver",
                                           log_path=self.log_path, env=env,
                                           cwd=self.model_repository)
            try:
                self._process.start()
                self.startup_seconds = self._process.wait_ready(
                    self._is_up, timeout=self.startup_timeout, what="live", interval=0.05)
                return self
            except BaseException as exc:
                self.stop()
                self._ports = ports  # keep for messages
                text = _read_from(self.log_path, mark)
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

    def _is_up(self) -> bool:
        return (_get_ok(self.http_url + "/v2/health/live", timeout=1.0)
                and _port_open(self.grpc_port) and _get_ok(self.metrics_url, timeout=2.0))

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
            # a stub that left the process group (setsid in student code) still goes
            for pid, started in leftovers:
                stat = _proc_stat(pid)
                if stat and stat[3] == started and stat[0] != "Z":
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except (ProcessLookupError, PermissionError):
                        pass
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
        return "\n".join(_read_from(self.log_path, 0).splitlines()[-lines:])

    def _log_mark(self) -> int:
        return _file_size(self.log_path) if self.log_path else 0

    def _log_since(self, mark: int) -> str:
        return _read_from(self.log_path, mark) if self.log_path else ""


def _fresh_log_path(log_dir: Path) -> Path:
    log_dir.mkdir(parents=True, exist_ok=True)
    path, n = log_dir / "tritonserver.log", 1
    while path.exists():
        n += 1
        path = log_dir / f"tritonserver-{n}.log"
    path.touch()
    return path


def _three_free_ports() -> tuple[int, int, int]:
    ports: list[int] = []
    while len(ports) < 3:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports[0], ports[1], ports[2]


def _port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _file_size(path: Path | None) -> int:
    try:
        return path.stat().st_size if path else 0
    except OSError:
        return 0


def _read_from(path: Path | None, offset: int) -> str:
    if path is None:
        return ""
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            return handle.read().decode("utf-8", "replace")
    except OSError:
        return ""
