"""Lab 2.2 — serving optimizations in vLLM (reference solution)."""

from __future__ import annotations


def prefix_caching_kwargs(profile: dict) -> dict:
    kwargs = {"enable_prefix_caching": True}
    if profile["device"] == "cpu":
        # vLLM's CPU default is 128-token blocks and only whole blocks are reused: up to
        # 127 tokens of the shared prefix would be recomputed for every request; with
        # 32-token blocks at most 31 (the GPU default of 16 needs no change)
        kwargs["block_size"] = 32
    return kwargs


def build_prompts(system: str, document: str, requests: list[dict]) -> list[str]:
    # the shared part first, byte for byte the same in every prompt; the request's own
    # part (id, question) last, so it never breaks the shared prefix
    shared = f"{system}\n\n### Document\n{document}\n\n"
    return [f"{shared}### Request {r['id']}\nQuestion: {r['question']}\nAnswer:"
            for r in requests]


def ngram_speculation(profile: dict) -> dict:
    return {"speculative_config": {"method": "ngram", "num_speculative_tokens": 4,
                                   "prompt_lookup_max": 4, "prompt_lookup_min": 2}}


def draft_speculation(draft_model: str, profile: dict) -> dict:
    return {"speculative_config": {"method": "draft_model", "model": draft_model,
                                   "num_speculative_tokens": 3}}


def quantized_serving(profile: dict) -> dict:
    return {"quantization": "fp8"}
