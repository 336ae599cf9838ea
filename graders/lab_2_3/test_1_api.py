"""Items: /health, and the OpenAI-compatible endpoints through the official `openai` client."""

import httpx
import pytest

from labgrade import Fail
from labgrade.kit import first_difference, openai_client

from . import prompts


@pytest.mark.points(5)
def test_health(student_app, score):
    server = student_app.require()
    score.measure(app_ready_seconds=round(server.ready_after or 0.0, 2))
    try:
        response = httpx.get(f"{server.base_url}/health", timeout=10)
    except httpx.HTTPError as exc:
        raise Fail(f"GET /health failed: {exc}") from None
    if response.status_code != 200:
        raise Fail(f"GET /health answered {response.status_code}, expected 200 once the engine "
                   "is up (README, 'Endpoints')")


@pytest.mark.points(10)
def test_completions(app_url, settings, expected):
    import openai

    client = openai_client(app_url)
    name = settings["served_model_name"]
    for prompt in prompts.COMPLETION:
        max_tokens = prompts.COMPLETION_MAX_TOKENS
        try:
            response = client.completions.create(model=name, prompt=prompt,
                                                 max_tokens=max_tokens, temperature=0.0)
        except openai.APIError as exc:
            raise Fail(f"POST /v1/completions failed through the openai client: {exc}") from None
        if not response.choices:
            raise Fail("the completion has no choices")
        text = response.choices[0].text
        want = expected.greedy(prompt, max_tokens)
        if text != want:
            raise Fail(f"/v1/completions for {prompt!r} with temperature=0 and max_tokens="
                       f"{max_tokens} differs from vLLM's own greedy output: "
                       f"{first_difference(text, want)}. Pass the request's sampling "
                       "settings to SamplingParams and return the generated text.")
        usage = response.usage
        if usage is None:
            raise Fail("/v1/completions must report usage (prompt_tokens, completion_tokens, "
                       "total_tokens)")
        want_prompt = expected.prompt_tokens(prompt)
        want_completion = expected.completion_tokens(prompt, max_tokens)
        if usage.prompt_tokens != want_prompt or usage.completion_tokens != want_completion \
                or usage.total_tokens != usage.prompt_tokens + usage.completion_tokens:
            raise Fail(f"usage is {usage.model_dump()}; for this answer the engine counted "
                       f"prompt_tokens={want_prompt} and completion_tokens={want_completion}, "
                       "and total_tokens is their sum. Count the token ids of the engine's "
                       "output (prompt_token_ids, outputs[0].token_ids), not words or "
                       "characters.")
        if response.choices[0].finish_reason not in ("length", "stop"):
            raise Fail(f"finish_reason is {response.choices[0].finish_reason!r}; expected "
                       "'length' or 'stop' (the engine's finish_reason)")
        if response.object != "text_completion":
            raise Fail(f"'object' is {response.object!r}; OpenAI's completions use "
                       "'text_completion'")


@pytest.mark.points(10)
def test_chat_completions(app_url, settings, expected):
    import openai

    client = openai_client(app_url)
    max_tokens = prompts.CHAT_MAX_TOKENS
    try:
        response = client.chat.completions.create(model=settings["served_model_name"],
                                                  messages=prompts.CHAT,
                                                  max_tokens=max_tokens, temperature=0.0)
    except openai.APIError as exc:
        raise Fail(f"POST /v1/chat/completions failed through the openai client: {exc}") from None
    if not response.choices:
        raise Fail("the chat completion has no choices")
    message = response.choices[0].message
    if message.role != "assistant" or not isinstance(message.content, str):
        raise Fail(f"the reply must be an assistant message with text content, got {message}")
    prompt = expected.chat_prompt(prompts.CHAT)
    want = expected.greedy(prompt, max_tokens)
    want_usage = {"prompt_tokens": expected.prompt_tokens(prompt),
                  "completion_tokens": expected.completion_tokens(prompt, max_tokens)}
    usage = response.usage.model_dump() if response.usage else None
    if message.content != want:
        if usage is None or usage.get("prompt_tokens") != want_usage["prompt_tokens"]:
            raise Fail(f"the chat reply differs from vLLM's greedy output for the templated "
                       f"prompt ({first_difference(message.content, want)}) and your prompt "
                       f"has {usage and usage.get('prompt_tokens')} tokens where the model's "
                       f"own chat template gives {want_usage['prompt_tokens']}: render the "
                       "messages with the tokenizer's apply_chat_template(..., "
                       "add_generation_prompt=True)")
        raise Fail("the chat reply with temperature=0 differs from vLLM's greedy output for the "
                   f"templated prompt: {first_difference(message.content, want)}")
    if usage is None:
        raise Fail("/v1/chat/completions must report usage (prompt_tokens, completion_tokens, "
                   "total_tokens)")
    if any(usage.get(k) != v for k, v in want_usage.items()) \
            or usage.get("total_tokens") != sum(want_usage.values()):
        # the reply is right, so the template is: what is wrong is the counting
        raise Fail(f"the chat reply is right, but its usage is {usage}; for this answer the "
                   f"engine counted {want_usage} and total_tokens is their sum. Count the "
                   "token ids of the engine's output (prompt_token_ids, outputs[0].token_ids), "
                   "not words or characters.")
    if response.object != "chat.completion":
        raise Fail(f"'object' is {response.object!r}; OpenAI's chat uses 'chat.completion'")
