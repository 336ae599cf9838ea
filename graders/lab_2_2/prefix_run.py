"""The prefix-caching run: the student's prompts on the student's prefix-caching engine,
N sequential requests after a cache reset, counted by vLLM's own
vllm:prefix_cache_queries / _hits."""

from __future__ import annotations

from dataclasses import dataclass, field

from labgrade import Fail
from labgrade.kit import call_student
from labgrade.runtime import prom

from . import workloads
from .engines import EngineHost


@dataclass
class PrefixRun:
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

    def where_prompts_part(self) -> str:
        """Feedback: where the prompts stop being the same text (whatever comes after that
        point is never shared)."""
        first = self.prompts[0] if self.prompts else ""
        other = next((p for p in self.prompts if p != first), None)
        if other is None:
            return ""
        at = next((i for i, (a, b) in enumerate(zip(first, other)) if a != b),
                  min(len(first), len(other)))
        return (f" Your first two differing prompts are the same text for {at} characters, up "
                f"to ...{first[max(0, at - 40):at]!r}; then one goes on with "
                f"{first[at:at + 30]!r} and the other with {other[at:at + 30]!r}.")


def check_prompts(prompts: object, requests: list[dict]) -> None:
    if not isinstance(prompts, list) or not all(isinstance(p, str) for p in prompts):
        raise Fail(f"build_prompts() must return a list of str, got {str(prompts)[:200]}")
    if len(prompts) != len(requests):
        repeated = len({(r["id"], r["question"]) for r in requests}) < len(requests)
        raise Fail(f"build_prompts() got {len(requests)} requests and returned {len(prompts)} "
                   "prompts: return one prompt per request, in order"
                   + (" (a request that comes twice gets a prompt each time)" if repeated
                      else ""))
    for prompt, req in zip(prompts, requests):
        for part, text in (("system prompt", workloads.SYSTEM), ("document", workloads.DOCUMENT),
                           ("request id", req["id"]), ("question", req["question"])):
            if text not in prompt:
                raise Fail(f"the prompt for request {req['id']} does not contain the {part} "
                           "verbatim: every prompt must carry the system prompt, the document,"
                           " its request id and its question, unchanged")


def measure(host: EngineHost, settings: dict) -> PrefixRun:
    """Raises Fail for the student's mistakes (prompts first, then the engine)."""
    n = int(settings["prefix_requests"])
    k = int(settings["ttft_repeats"]) * int(settings["ttft_max_rounds"]) + 1  # + warm-up
    requests = workloads.prefix_requests(n + k)
    # a request that comes twice (issue 20: hidden inputs with a repeated element) must
    # get a prompt each time; it is only checked, never sent to an engine
    asked = requests + [requests[n // 2]]
    prompts = call_student(host.lab.submission, "serving", "build_prompts", workloads.SYSTEM,
                           workloads.DOCUMENT, asked, timeout=60)
    check_prompts(prompts, asked)
    engine = host.get("prefix").require()
    run = PrefixRun(prompts=prompts[:n], ttft_prompts=prompts[n:n + k])
    counts = host.call("token_counts", "prefix", run.prompts)
    run.lengths, run.common_prefix = counts["lengths"], counts["common_prefix"]
    if max(run.lengths) + 1 > settings["max_model_len"]:
        raise Fail(f"your prompts are up to {max(run.lengths)} tokens; they must fit "
                   f"max_model_len={settings['max_model_len']} with room for the answer")
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
    run.block_size = int(engine.facts.get("block_size") or 0)
    return run
