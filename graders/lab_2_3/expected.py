"""What a correct app answers: the grader's reference engine (greedy) and the model's
tokenizer, fetched in a background thread while the student's app starts up.

A failure here is the grader's, not the student's: it is raised as it happened (a grader
error), never recorded as an item's failure.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future

from labgrade.runtime.vllm import ReferenceEngine

from . import prompts


class Expected:
    """Greedy answers for the hidden requests (prompts.py) and the tokenizer; items ask
    with the same (prompt, max_tokens) they sent, other requests reach the engine."""

    def __init__(self, reference: ReferenceEngine, model: str) -> None:
        self._reference = reference
        self._answers: dict[tuple[str, int], dict] = {}
        self._tokenizer: Future = Future()  # set once every answer below is in
        # a daemon thread: an interrupted grading does not wait for the reference engine
        threading.Thread(target=self._fetch, args=(model,), daemon=True,
                         name="expected").start()

    def _fetch(self, model: str) -> None:
        try:
            self._tokenizer.set_result(self._fetch_all(model))
        except BaseException as exc:  # noqa: BLE001 - re-raised to every item that needs the answers
            self._tokenizer.set_exception(exc)

    def _fetch_all(self, model: str):
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(model)

        def render(messages: list[dict]) -> str:
            return tokenizer.apply_chat_template(messages, add_generation_prompt=True,
                                                 tokenize=False)

        for prompt_list, max_tokens in [
                (prompts.COMPLETION, prompts.COMPLETION_MAX_TOKENS),
                ([render(prompts.CHAT)], prompts.CHAT_MAX_TOKENS),
                ([prompts.STREAM_PROMPT], prompts.STREAM_MAX_TOKENS),
                ([render(prompts.STREAM_CHAT)], prompts.STREAM_CHAT_MAX_TOKENS)]:
            answers = self._reference.completions(prompt_list, max_tokens)
            for prompt, answer in zip(prompt_list, answers):
                self._answers[(prompt, max_tokens)] = answer
        return tokenizer

    def _answer(self, prompt: str, max_tokens: int) -> dict:
        self._tokenizer.result()  # re-raises the fetch's exception
        key = (prompt, max_tokens)
        if key not in self._answers:
            self._answers[key] = self._reference.completions([prompt], max_tokens)[0]
        return self._answers[key]

    def greedy(self, prompt: str, max_tokens: int) -> str:
        """The reference engine's greedy text."""
        return self._answer(prompt, max_tokens)["text"]

    def completion_tokens(self, prompt: str, max_tokens: int) -> int:
        """How many tokens the reference engine generated for that greedy text."""
        return self._answer(prompt, max_tokens)["completion_tokens"]

    def chat_prompt(self, messages: list[dict]) -> str:
        return self._tokenizer.result().apply_chat_template(
            messages, add_generation_prompt=True, tokenize=False)

    def prompt_tokens(self, prompt: str) -> int:
        return len(self._tokenizer.result()(prompt, add_special_tokens=True)["input_ids"])
