"""Items: the OpenAI-compatible server started from the student's command."""

import httpx
import pytest

from labgrade import Fail
from labgrade.kit import openai_client

from .prompts import LONG_PROMPT, SINGLE


@pytest.mark.points(5)
def test_server_health(student_server, score):
    server = student_server.require()
    score.measure(server_ready_seconds=round(server.ready_after or 0.0, 2))
    response = httpx.get(f"{server.base_url}/health", timeout=10)
    if response.status_code != 200:
        raise Fail(f"GET /health answered {response.status_code}, expected 200")


@pytest.mark.points(5)
def test_server_lists_the_model(student_server, settings):
    server = student_server.require()
    models = openai_client(server.base_url).models.list().data
    ids = [m.id for m in models]
    name = settings["served_model_name"]
    if name not in ids:
        raise Fail(f"GET /v1/models lists {ids}; the model must be served as {name!r} "
                   "(--served-model-name)")
    listed = next(m for m in models if m.id == name)
    max_len = getattr(listed, "max_model_len", None)
    if max_len is not None and max_len != settings["max_model_len"]:
        raise Fail(f"the server's max_model_len is {max_len}, expected "
                   f"{settings['max_model_len']}")


@pytest.mark.points(10)
def test_server_completions(student_server, settings, reference):
    server = student_server.require()
    client = openai_client(server.base_url)
    name = settings["served_model_name"]
    import openai

    for prompt in SINGLE[:2]:
        try:
            response = client.completions.create(model=name, prompt=prompt, max_tokens=16,
                                                 temperature=0.0)
        except openai.APIError as exc:
            raise Fail(f"POST /v1/completions failed: {exc}") from None
        choice = response.choices[0]
        expected = reference.greedy([prompt], max_tokens=16)[0]
        if choice.text != expected:
            raise Fail(f"/v1/completions for {prompt!r} returned {choice.text!r}; the "
                       f"reference engine gives {expected!r} (same model, temperature 0): "
                       "check --dtype")
        if response.usage is None or response.usage.completion_tokens > 16:
            raise Fail("/v1/completions must report usage with completion_tokens <= max_tokens")
    try:
        client.completions.create(model=name, prompt=LONG_PROMPT, max_tokens=4, temperature=0)
    except openai.APIError as exc:
        raise Fail(f"a prompt of about 300 tokens was refused ({exc}); the server must accept "
                   f"prompts up to max_model_len={settings['max_model_len']}") from None


@pytest.mark.points(10)
def test_server_chat_completions(student_server, settings, model):
    server = student_server.require()
    client = openai_client(server.base_url)
    name = settings["served_model_name"]
    messages = [{"role": "system", "content": "Answer briefly."},
                {"role": "user", "content": "What does the cache keep?"}]
    import openai
    from transformers import AutoTokenizer

    try:
        response = client.chat.completions.create(model=name, messages=messages, max_tokens=8,
                                                  temperature=0.0)
    except openai.APIError as exc:
        raise Fail(f"POST /v1/chat/completions failed: {exc}") from None
    message = response.choices[0].message
    if message.role != "assistant" or not isinstance(message.content, str):
        raise Fail(f"the chat reply must be an assistant message with text, got {message}")
    tokenizer = AutoTokenizer.from_pretrained(model)
    expected = len(tokenizer.apply_chat_template(messages, add_generation_prompt=True,
                                                 tokenize=True, return_dict=False))
    got = response.usage.prompt_tokens if response.usage else None
    if got != expected:
        raise Fail(f"the chat prompt has {got} tokens; the model's own chat template gives "
                   f"{expected}: serve with the model's chat template (do not override it)")
