"""Lab 2.2 — serving optimizations in vLLM. Complete the functions below (see README.md).

The grader builds every engine itself, from its own base arguments (model, dtype,
max_model_len, KV-cache memory, enforce_eager) plus the overrides your functions return,
so return ONLY the vllm.LLM keyword arguments that switch the optimization on. `profile`
is a dict such as {"name": "cpu", "device": "cpu", "dtype": "float32",
"max_model_len": 1024}.
"""

from __future__ import annotations


def prefix_caching_kwargs(profile: dict) -> dict:
    """Engine arguments that turn on automatic prefix caching.

    TODO: the grader's base engine has prefix caching OFF. Only whole KV blocks are reused;
    see README.md for the workload and the block size that suits it.
    """
    raise NotImplementedError("prefix_caching_kwargs: TODO")


def build_prompts(system: str, document: str, requests: list[dict]) -> list[str]:
    """One prompt per request ({"id": ..., "question": ...}), in order.

    TODO: every prompt must contain the system prompt, the document, the request's id and
    its question, verbatim. Arrange them so the prefix cache can reuse as much as possible.
    """
    raise NotImplementedError("build_prompts: TODO")


def ngram_speculation(profile: dict) -> dict:
    """Engine arguments for n-gram (prompt lookup) speculative decoding.

    TODO: {"speculative_config": {"method": "ngram", ...}}; choose how many tokens to
    propose per step and the n-gram sizes to match.
    """
    raise NotImplementedError("ngram_speculation: TODO")


def draft_speculation(draft_model: str, profile: dict) -> dict:
    """Engine arguments for speculative decoding with the small `draft_model` (a path that
    shares the target's tokenizer).

    TODO: {"speculative_config": {"model": draft_model, ...}}.
    """
    raise NotImplementedError("draft_speculation: TODO")


def quantized_serving(profile: dict) -> dict:
    """(gpu profile) Engine arguments that serve the model with quantized weights.

    TODO: for example vLLM's on-the-fly FP8 weight quantization.
    """
    raise NotImplementedError("quantized_serving: TODO")
