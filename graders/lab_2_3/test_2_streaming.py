"""Items: Server-Sent Events streaming, on the wire (httpx) and through the `openai` client."""

import pytest

from labgrade import Fail
from labgrade.kit import first_difference, openai_client
from labgrade.probes.openai_http import SSEStream, stream_sse

from . import prompts

MIN_CHUNKS = 3  # a real stream sends the text in pieces as the engine makes it


def _check_wire(rec: SSEStream, what: str) -> None:
    """The SSE framing every streamed answer must have."""
    if rec.error:
        raise Fail(f"{what}: the stream broke off: {rec.error}")
    if rec.status != 200:
        raise Fail(f"{what} answered {rec.status}: {rec.error_body[:300]}")
    if not rec.content_type.startswith("text/event-stream"):
        raise Fail(f"{what}: Content-Type is {rec.content_type!r}; a stream is "
                   "'text/event-stream' (StreamingResponse(..., media_type=...))")
    if rec.stray_lines:
        raise Fail(f"{what}: lines that are not Server-Sent Events, e.g. {rec.stray_lines[0]!r}; "
                   "each event is 'data: <json>' followed by a blank line")
    if rec.bad_payloads:
        raise Fail(f"{what}: an event's data is not a JSON object: {rec.bad_payloads[0]!r}")
    if not rec.done:
        raise Fail(f"{what}: the stream ended without 'data: [DONE]'; OpenAI clients and "
                   "proxies expect it as the last event")
    if rec.events_after_done:
        raise Fail(f"{what}: {rec.events_after_done} event(s) came after 'data: [DONE]'; "
                   "[DONE] must be the last event")
    if len(rec.pieces) < MIN_CHUNKS:
        raise Fail(f"{what}: the text came in {len(rec.pieces)} chunk(s); stream it piece by "
                   "piece as the engine produces it (iterate the engine's async generator)")


@pytest.mark.points(10)
def test_stream_completions(app_url, settings, expected):
    import openai

    prompt, max_tokens = prompts.STREAM_PROMPT, prompts.STREAM_MAX_TOKENS
    body = {"model": settings["served_model_name"], "prompt": prompt, "max_tokens": max_tokens,
            "temperature": 0.0, "stream_options": {"include_usage": True}}
    rec = stream_sse(app_url, "/v1/completions", body, chat=False)
    _check_wire(rec, "a streamed /v1/completions")
    want = expected.greedy(prompt, max_tokens)
    if rec.text != want:
        raise Fail(f"the streamed pieces joined give {rec.text!r}; with temperature=0 vLLM "
                   f"generates {want!r}. Send each chunk's new text only (the delta).")
    objects = {c.get("object") for c in rec.chunks if c.get("choices")}
    if objects != {"text_completion"}:
        raise Fail(f"completion chunks must have object 'text_completion', got {objects}")
    if not rec.usage:
        raise Fail("with stream_options={'include_usage': true} the stream must end (before "
                   f"[DONE]) with a chunk carrying usage; got {rec.usage}")
    want_usage = {"prompt_tokens": expected.prompt_tokens(prompt),
                  "completion_tokens": expected.completion_tokens(prompt, max_tokens)}
    if any(rec.usage.get(k) != v for k, v in want_usage.items()):
        raise Fail(f"the stream's usage chunk says {rec.usage}; for this answer the engine "
                   f"counted {want_usage}. Count the token ids of the engine's output, not "
                   "chunks, words or characters.")

    client = openai_client(app_url)
    try:
        pieces = [c.choices[0].text for c in client.completions.create(
            model=settings["served_model_name"], prompt=prompt, max_tokens=max_tokens,
            temperature=0.0, stream=True) if c.choices]
    except openai.APIError as exc:
        raise Fail(f"streaming through the openai client failed: {exc}") from None
    if "".join(pieces) != want:
        raise Fail(f"through the openai client the stream gives {''.join(pieces)!r}, expected "
                   f"{want!r}")


@pytest.mark.points(5)
def test_stream_chat(app_url, settings, expected):
    import openai

    max_tokens = prompts.STREAM_CHAT_MAX_TOKENS
    body = {"model": settings["served_model_name"], "messages": prompts.STREAM_CHAT,
            "max_tokens": max_tokens, "temperature": 0.0}
    rec = stream_sse(app_url, "/v1/chat/completions", body, chat=True)
    _check_wire(rec, "a streamed /v1/chat/completions")
    want = expected.greedy(expected.chat_prompt(prompts.STREAM_CHAT), max_tokens)
    if rec.text != want:
        raise Fail(f"the streamed deltas joined give {rec.text!r}; with temperature=0 vLLM "
                   f"generates {want!r} ({first_difference(rec.text, want)}). Send each "
                   "chunk's new text only (the delta), never the text so far.")
    if "assistant" not in rec.roles:
        raise Fail("no chunk announces the role: the first delta should be "
                   "{'role': 'assistant', ...}")
    objects = {c.get("object") for c in rec.chunks if c.get("choices")}
    if objects != {"chat.completion.chunk"}:
        raise Fail(f"chat chunks must have object 'chat.completion.chunk', got {objects}")

    client = openai_client(app_url)
    try:
        text = "".join(c.choices[0].delta.content or "" for c in client.chat.completions.create(
            model=settings["served_model_name"], messages=prompts.STREAM_CHAT,
            max_tokens=max_tokens, temperature=0.0, stream=True) if c.choices)
    except openai.APIError as exc:
        raise Fail(f"streaming chat through the openai client failed: {exc}") from None
    if text != want:
        raise Fail(f"through the openai client the chat stream gives {text!r}, expected {want!r}")
