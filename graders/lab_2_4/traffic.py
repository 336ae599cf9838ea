"""Requests the gateway items send: SSE streams read event by event with arrival times,
the same request straight to vLLM for comparison, and bursts."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx

PROMPT = "The gateway forwards every token of"
CHAT = [{"role": "user", "content": "Say something about load balancers."}]


@dataclass
class Stream:
    status: int
    events: list[str] = field(default_factory=list)   # the `data:` payloads, in order
    arrivals: list[float] = field(default_factory=list)
    error: str = ""

    @property
    def done(self) -> bool:
        return bool(self.events) and self.events[-1] == "[DONE]"

    def pieces(self) -> list[tuple[str, str | None]]:
        """(text, finish_reason) per event, without ids and timestamps (which differ)."""
        out = []
        for data in self.events:
            if data == "[DONE]":
                continue
            choice = (json.loads(data).get("choices") or [{}])[0]
            text = choice.get("text")
            if text is None:
                text = (choice.get("delta") or {}).get("content") or ""
            out.append((text, choice.get("finish_reason")))
        return out

    def text(self) -> str:
        return "".join(t for t, _ in self.pieces())


def body(kind: str, max_tokens: int, stream: bool, model: str) -> dict:
    common = {"model": model, "max_tokens": max_tokens, "temperature": 0.0,
              "stream": stream, "ignore_eos": True}
    return {**common, "prompt": PROMPT} if kind == "completions" else \
        {**common, "messages": CHAT}


def path(kind: str) -> str:
    return "/v1/completions" if kind == "completions" else "/v1/chat/completions"


def stream(base_url: str, kind: str, max_tokens: int, model: str, key: str | None = None,
           on_first_event=None, timeout: float = 120.0) -> Stream:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    started = time.monotonic()
    try:
        with httpx.stream("POST", base_url + path(kind), json=body(kind, max_tokens, True, model),
                          headers=headers, timeout=timeout) as answer:
            result = Stream(answer.status_code)
            if answer.status_code != 200:
                answer.read()
                result.error = answer.text[:300]
                return result
            for line in answer.iter_lines():
                if line.startswith("data:"):
                    result.events.append(line[5:].strip())
                    result.arrivals.append(time.monotonic() - started)
                    if len(result.events) == 1 and on_first_event is not None:
                        on_first_event()
    except httpx.HTTPError as exc:
        result = locals().get("result") or Stream(0)
        result.error = f"{type(exc).__name__}: {exc}"
    return result


def burst(url: str, key: str, n: int) -> list[httpx.Response]:
    """n GETs with one key, all in flight together."""
    with httpx.Client(timeout=30, limits=httpx.Limits(max_connections=n)) as client, \
            ThreadPoolExecutor(n) as pool:
        return list(pool.map(lambda _: client.get(url, headers={"Authorization":
                                                                   f"Bearer {key}"}),
                             range(n)))
