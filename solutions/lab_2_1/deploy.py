"""Lab 2.1 — vLLM deployment (reference solution)."""

from __future__ import annotations

import sys


def engine_kwargs(model: str, profile: dict) -> dict:
    kwargs = {
        "model": model,
        "dtype": profile["dtype"],
        "max_model_len": profile["max_model_len"],
        "seed": 0,
    }
    if profile["device"] == "cpu":
        kwargs["enforce_eager"] = True  # no torch.compile: start-up 3 s instead of ~50 s
        kwargs["kv_cache_memory_bytes"] = 64 * 1024 * 1024
    else:
        kwargs["gpu_memory_utilization"] = min(0.2, profile["gpu_memory_budget"])
    return kwargs


def generate_batch(llm, prompts: list[str], *, max_tokens: int, temperature: float = 0.0,
                   stop: list[str] | None = None) -> list[str]:
    from vllm import SamplingParams

    params = SamplingParams(max_tokens=max_tokens, temperature=temperature, stop=stop)
    outputs = llm.generate(prompts, params, use_tqdm=False)
    return [output.outputs[0].text for output in outputs]


def server_command(model: str, *, host: str, port: int, served_model_name: str,
                   profile: dict) -> list[str]:
    argv = [sys.executable, "-m", "vllm.entrypoints.openai.api_server",
            "--model", model, "--served-model-name", served_model_name,
            "--host", host, "--port", str(port),
            "--dtype", profile["dtype"], "--max-model-len", str(profile["max_model_len"])]
    if profile["device"] == "cpu":
        argv += ["--enforce-eager", "--kv-cache-memory-bytes", str(64 * 1024 * 1024)]
    else:
        argv += ["--gpu-memory-utilization", str(min(0.2, profile["gpu_memory_budget"]))]
    return argv
