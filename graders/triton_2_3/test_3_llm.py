"""The LLM through Triton: the vLLM-backend repository read as data (it cannot run here),
and llm_stream, a decoupled Python-backend model streaming from a real vLLM server."""

from __future__ import annotations

import json
import time

import pytest

from labgrade import Fail, Ungradable
from labgrade.kit import first_difference

from .checks import engine_arg_fields, read_config
from .streaming import completion, engine_counters, stream

VLLM_CONFIG = "container_repository/llm_vllm/config.pbtxt"
VLLM_ARGS = "container_repository/llm_vllm/1/model.json"


@pytest.mark.points(10)
def test_vllm_backend_repository(submission, score):
    """The repository for Triton's vLLM backend: config.pbtxt with backend "vllm", decoupled,
    max_batch_size 0; model.json a JSON object of engine arguments that the installed
    vLLM's AsyncEngineArgs accepts, "model" included."""
    config, todo = read_config(submission, VLLM_CONFIG)
    problems = []
    if config.get("backend") != "vllm":
        problems.append(f"backend is {config.get('backend')!r}; expected \"vllm\"")
    if int(config.get("max_batch_size", 0)) != 0:
        problems.append(f"max_batch_size is {config['max_batch_size']}; the vLLM backend "
                        "batches inside the engine: set 0")
    if not config.get("model_transaction_policy", {}).get("decoupled"):
        problems.append("model_transaction_policy { decoupled: true } is missing: the vLLM "
                        "backend streams")
    text = submission.require(VLLM_ARGS).read_text(errors="replace")
    try:
        args = json.loads(text)
    except json.JSONDecodeError as exc:
        raise Fail(f"{VLLM_ARGS} is not valid JSON: {exc.msg} at line {exc.lineno} column "
                   f"{exc.colno}") from None
    if not isinstance(args, dict):
        raise Fail(f"{VLLM_ARGS} must be a JSON object of engine arguments")
    fields = engine_arg_fields()
    unknown = sorted(set(args) - fields)
    score.measure(engine_args=sorted(args), unknown=unknown)
    if unknown:
        problems.append(f"{VLLM_ARGS}: {unknown} are not AsyncEngineArgs fields of the "
                        "installed vLLM (the backend would fail to start the engine)")
    if not args.get("model"):
        problems.append(f"{VLLM_ARGS} has no \"model\"")
    if problems:
        raise Fail(f"{VLLM_CONFIG}: {todo}" + "; ".join(problems))


@pytest.mark.points(10)
def test_vllm_backend_serves():
    """Serving llm_vllm with Triton's vLLM backend (the course image)."""
    raise Ungradable("needs a tritonserver with the vLLM backend (the course image)")


def _llm(llm_server, deployment):
    server = deployment.require_model("llm_stream")
    try:
        llm_server.wait()
    except Exception as exc:
        raise RuntimeError(f"the grader's vLLM server did not start: {exc}") from exc
    return server


STREAM_ATTEMPTS = 4

# The first LLM item may wait for the grader's vLLM server to come up (~30 s on 2 idle cores,
# minutes on a busy machine): their budget covers it.
@pytest.mark.points(10)
@pytest.mark.budget(300)
def test_stream_arrives_incrementally(llm_server, deployment, settings, score):
    """The same prompt twice over a gRPC stream: at least stream_min_responses responses
    each, ending with the final flag, and spread over the generation: from the first
    response to the last takes at least stream_spread_min of the engine's own time for the
    same request (measured just before). Responses held back and sent together arrive in
    a burst."""
    server = _llm(llm_server, deployment)
    score.measure(server_ready_seconds=llm_server.ready_after)
    seen = []
    for i, prompt in enumerate(settings["stream_prompts"]):
        max_tokens = settings["stream_max_tokens"]
        what = f"stream {i + 1} (prompt {prompt!r}, max_tokens {max_tokens})"
        # vLLM on a loaded CPU sometimes hands a whole stream over at once: one spread
        # stream in STREAM_ATTEMPTS proves the model sends as it goes; held back, none is
        for _ in range(STREAM_ATTEMPTS):
            started = time.monotonic()
            completion(llm_server.base_url, settings["llm_served_name"], prompt, max_tokens)
            engine_s = time.monotonic() - started
            got = stream(server, prompt, max_tokens)
            if got["error"]:
                raise Fail(f"{what}: the stream returned an error: {got['error']}")
            n, times = len(got["chunks"]), got["times"]
            spread = times[-1] - times[0] if times else 0.0
            seen.append({"stream": i + 1, "responses": n,
                         "first_s": round(times[0], 4) if times else None,
                         "last_s": round(times[-1], 4) if times else None,
                         "engine_s": round(engine_s, 4),
                         "spread_ratio": round(spread / engine_s, 3)})
            score.measure(streams=seen)
            if n < settings["stream_min_responses"]:
                raise Fail(f"{what}: {n} responses with text; expected at least "
                           f"{settings['stream_min_responses']} (send one response per "
                           "upstream chunk with response_sender.send, not one at the end)")
            if not got["final"]:
                raise Fail(f"{what}: the stream never ended with the final flag "
                           "(TRITONSERVER_RESPONSE_COMPLETE_FINAL)")
            if spread >= settings["stream_spread_min"] * engine_s:
                break
        else:
            raise Fail(f"{what}, {STREAM_ATTEMPTS} times: the {n} responses always arrived "
                       f"together (last time within {spread:.3f} s of each other, first at "
                       f"{times[0]:.3f} s), while the engine takes {engine_s:.3f} s to "
                       "generate the answer: they were held back and sent together; send "
                       "each as soon as its chunk arrives")


@pytest.mark.points(5)
@pytest.mark.budget(300)
def test_stream_text_matches_engine(llm_server, deployment, settings, score):
    """Streamed text, joined, equals the engine's own greedy completion of the prompt."""
    server = _llm(llm_server, deployment)
    for prompt in dict.fromkeys(settings["stream_prompts"]):
        want = completion(llm_server.base_url, settings["llm_served_name"], prompt,
                          settings["stream_max_tokens"])["text"]
        got = stream(server, prompt, settings["stream_max_tokens"])
        text = "".join(got["chunks"])
        score.measure(prompt=prompt, reference=want, streamed=text)
        if got["error"] or text != want:
            raise Fail(f"prompt {prompt!r}: the streamed text differs from the engine's greedy "
                       f"completion ({got['error'] or first_difference(text, want)}). Ask "
                       "upstream with temperature 0 and the request's max_tokens, and forward "
                       "every chunk's text")


@pytest.mark.points(10)
@pytest.mark.budget(300)
def test_cancel_stops_generation(llm_server, deployment, settings, score):
    """Cancelling the stream after a few responses stops generation upstream: vLLM's
    vllm:num_requests_running comes back to 0 and it generates far fewer tokens than
    asked."""
    server = _llm(llm_server, deployment)
    base, asked = llm_server.base_url, settings["cancel_max_tokens"]
    full = completion(base, settings["llm_served_name"], settings["cancel_prompt"], asked)
    if full["tokens"] < asked:
        raise RuntimeError(f"set-up: the cancel prompt ends after {full['tokens']} tokens")
    before = engine_counters(base)
    got = stream(server, settings["cancel_prompt"], asked, cancel_after=settings["cancel_after"])
    if got["error"] or not got["cancelled"]:
        raise Fail(f"the stream to cancel failed before {settings['cancel_after']} responses: "
                   f"{got['error'] or 'it ended early'}")
    deadline = time.monotonic() + 10
    now = engine_counters(base)
    while now["running"] > 0 and time.monotonic() < deadline:
        time.sleep(0.1)
        now = engine_counters(base)
    generated = now["generated"] - before["generated"]
    score.measure(asked=asked, generated_after_cancel=generated, running=now["running"])
    if now["running"] > 0 or generated >= asked / 2:
        raise Fail(f"after the client cancelled, vLLM generated {generated:.0f} of the "
                   f"{asked} tokens asked (vllm:num_requests_running {now['running']:.0f}): "
                   "check response_sender.is_cancelled() while streaming and close the "
                   "upstream connection, which makes vLLM abort the request")
