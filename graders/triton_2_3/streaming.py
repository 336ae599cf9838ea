"""The grader's gRPC streaming client for llm_stream, and what the vLLM server says."""

from __future__ import annotations

import json
import queue
import time
import urllib.request

import numpy as np

from labgrade.runtime import prom


def stream(server, prompt: str, max_tokens: int, *, cancel_after: int | None = None,
           timeout: float = 60.0) -> dict:
    """One request over a gRPC stream; returns {"chunks", "times" (s since send), "final",
    "error", "cancelled"}. `cancel_after`: cancel the stream after that many responses."""
    import tritonclient.grpc as grpcclient

    answers: queue.Queue = queue.Queue()
    client = server.grpc_client()
    client.start_stream(callback=lambda result, error: answers.put((time.monotonic(), result,
                                                                   error)))
    text = grpcclient.InferInput("text_input", [1], "BYTES")
    text.set_data_from_numpy(np.array([prompt.encode()], dtype=object))
    limit = grpcclient.InferInput("max_tokens", [1], "INT32")
    limit.set_data_from_numpy(np.array([max_tokens], dtype=np.int32))
    out = {"chunks": [], "times": [], "final": False, "error": "", "cancelled": False}
    start = time.monotonic()
    try:
        client.async_stream_infer("llm_stream", [text, limit], enable_empty_final_response=True)
        deadline = start + timeout
        while time.monotonic() < deadline:
            try:
                at, result, error = answers.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if error is not None:
                out["error"] = str(error)
                break
            response = result.get_response()
            if response.parameters["triton_final_response"].bool_param:
                out["final"] = True
            values = result.as_numpy("text_output")
            if values is not None and values.size:
                chunk = values.reshape(-1)[0]
                out["chunks"].append(chunk.decode() if isinstance(chunk, bytes) else str(chunk))
                out["times"].append(at - start)
            if out["final"]:
                break
            if cancel_after is not None and len(out["chunks"]) >= cancel_after:
                client.stop_stream(cancel_requests=True)
                out["cancelled"] = True
                break
    finally:
        client.close()
    return out


def completion(base_url: str, model: str, prompt: str, max_tokens: int) -> dict:
    """The engine's own greedy answer (non-streaming /v1/completions)."""
    body = json.dumps({"model": model, "prompt": prompt, "max_tokens": max_tokens,
                       "temperature": 0.0}).encode()
    request = urllib.request.Request(f"{base_url}/v1/completions", data=body,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as response:
        answer = json.loads(response.read())
    return {"text": answer["choices"][0]["text"],
            "finish_reason": answer["choices"][0].get("finish_reason"),
            "tokens": answer["usage"]["completion_tokens"]}


def engine_counters(base_url: str) -> dict:
    snapshot = prom.scrape(f"{base_url}/metrics")
    return {"running": snapshot.value("vllm:num_requests_running", default=0.0),
            "generated": snapshot.value("vllm:generation_tokens", default=0.0)}
