"""A fake OpenAI completions server with a known token schedule, to calibrate clients.

    python -m labgrade.runtime.fake_openai --port N [--ttft 0.02] [--itl 0.005]

`POST /v1/completions` with `"stream": true` answers `max_tokens` Server-Sent Events: the
first after `--ttft` seconds, the others `--itl` seconds apart, then a usage chunk and
`data: [DONE]` (vLLM's shapes). A plain request gets one JSON answer after the same
schedule. Every other path is 404 (so `vllm bench serve` skips its /tokenize alignment).
`GET /truth` returns what the server really did, per request, from its own clock: the
delay of the first chunk (TTFT without the network and the client), the mean gap between
chunks as sent, and the number of tokens. A client measuring this server should report
what /truth says; whatever it adds is the client's own overhead.

Plain asyncio and HTTP/1.1 keep-alive; no dependencies beyond the standard library.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

_TRUTH: list[dict] = []


def _chunk(i: int, text: str, finish: str | None) -> bytes:
    payload = {"id": "cmpl-fake", "object": "text_completion", "created": 0, "model": "fake",
               "choices": [{"index": 0, "text": text, "logprobs": None,
                            "finish_reason": finish}]}
    return f"data: {json.dumps(payload)}\n\n".encode()


async def _respond(writer: asyncio.StreamWriter, status: str, body: bytes,
                   content_type: str = "application/json") -> None:
    writer.write(f"HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\n"
                 f"content-length: {len(body)}\r\n\r\n".encode() + body)
    await writer.drain()


async def _stream(writer: asyncio.StreamWriter, n: int, ttft: float, itl: float,
                  prompt_tokens: int, usage: bool) -> dict:
    writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                 b"transfer-encoding: chunked\r\n\r\n")

    async def send(data: bytes) -> None:
        writer.write(b"%x\r\n%s\r\n" % (len(data), data))
        await writer.drain()

    started = time.perf_counter()
    sent = []
    due = started + ttft
    for i in range(n):
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        await send(_chunk(i, f" t{i}", "length" if i == n - 1 else None))
        sent.append(time.perf_counter())
        due += itl
    if usage:
        counts = {"prompt_tokens": prompt_tokens, "completion_tokens": n,
                  "total_tokens": prompt_tokens + n}
        final = {"id": "cmpl-fake", "object": "text_completion", "created": 0,
                 "model": "fake", "choices": [], "usage": counts}
        await send(f"data: {json.dumps(final)}\n\n".encode())
    await send(b"data: [DONE]\n\n")
    writer.write(b"0\r\n\r\n")
    await writer.drain()
    gaps = [b - a for a, b in zip(sent, sent[1:])]
    return {"ttft": sent[0] - started if sent else None, "tokens": n,
            "itl_mean": sum(gaps) / len(gaps) if gaps else None}


async def _handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                  ttft: float, itl: float) -> None:
    try:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            request_line, *headers = head.decode("latin-1").split("\r\n")
            method, path, _ = (request_line.split(" ") + ["", ""])[:3]
            length = 0
            for header in headers:
                name, _, value = header.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
            raw = await reader.readexactly(length) if length else b""
            if method == "GET" and path == "/truth":
                await _respond(writer, "200 OK", json.dumps(_TRUTH).encode())
                continue
            if method == "POST" and path == "/truth/reset":
                _TRUTH.clear()
                await _respond(writer, "200 OK", b"{}")
                continue
            if method != "POST" or path != "/v1/completions":
                await _respond(writer, "404 Not Found", b'{"error": "not found"}')
                continue
            body = json.loads(raw or b"{}")
            n = int(body.get("max_tokens") or 16)
            prompt = body.get("prompt") or ""
            prompt_tokens = len(prompt) if isinstance(prompt, list) else len(str(prompt).split())
            if body.get("stream"):
                usage = bool((body.get("stream_options") or {}).get("include_usage"))
                _TRUTH.append(await _stream(writer, n, ttft, itl, prompt_tokens, usage))
            else:
                await asyncio.sleep(ttft + itl * (n - 1))
                text = "".join(f" t{i}" for i in range(n))
                await _respond(writer, "200 OK", json.dumps({
                    "id": "cmpl-fake", "object": "text_completion", "created": 0,
                    "model": "fake", "choices": [{"index": 0, "text": text, "logprobs": None,
                                                  "finish_reason": "length"}],
                    "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": n,
                              "total_tokens": prompt_tokens + n}}).encode())
    except ConnectionError:
        return
    finally:
        writer.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ttft", type=float, default=0.02, help="seconds to the first token")
    parser.add_argument("--itl", type=float, default=0.005, help="seconds between tokens")
    args = parser.parse_args(argv)

    async def serve() -> None:
        server = await asyncio.start_server(
            lambda r, w: _handle(r, w, args.ttft, args.itl), args.host, args.port)
        async with server:
            await server.serve_forever()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
