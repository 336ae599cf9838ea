"""The grader's load generator for the rollout items: `clients` threads, each with its own
HTTP client, send unversioned requests to one model back to back and log every answer
(which version served it) or error, timed from the grading process."""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Answer:
    sent: float          # time.monotonic() when the request left
    version: str | None  # the version that answered, None for a failure
    error: str = ""


class ClientThreads:
    """`clients` threads running `self._client()` from entering the `with` block until it
    ends (`self._stop` is set then)."""

    clients: int
    _stop: threading.Event

    def __enter__(self):
        self._threads = [threading.Thread(target=self._client, daemon=True)
                         for _ in range(self.clients)]
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def _client(self) -> None:
        raise NotImplementedError


@dataclass
class LoadGenerator(ClientThreads):
    """`with LoadGenerator(server, "detector", clients=3) as load: ...` then `load.answers`."""

    server: object
    model: str
    clients: int = 3
    pause: float = 0.002
    answers: list[Answer] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _client(self) -> None:
        import tritonclient.http as httpclient
        from tritonclient.utils import InferenceServerException

        client = self.server.http_client(network_timeout=30.0)
        features = httpclient.InferInput("FEATURES", [1, 4], "FP32")
        features.set_data_from_numpy(np.ones((1, 4), dtype=np.float32))
        try:
            while not self._stop.is_set():
                sent = time.monotonic()
                try:
                    result = client.infer(self.model, [features])
                    answer = Answer(sent, str(result.get_response().get("model_version")))
                except (InferenceServerException, OSError) as exc:
                    answer = Answer(sent, None, str(exc))
                with self._lock:
                    self.answers.append(answer)
                time.sleep(self.pause)
        finally:
            client.close()

    def wait_for_answers(self, count: int, timeout: float = 10.0) -> None:
        """Until `count` requests were answered (the clients are up and running)."""
        deadline = time.monotonic() + timeout
        while len(self.answers) < count and time.monotonic() < deadline:
            time.sleep(0.02)

    # -- what items read ----------------------------------------------------------------
    def failed(self, start: float = 0.0, end: float = float("inf")) -> list[Answer]:
        return [a for a in self.answers if a.version is None and start <= a.sent <= end]

    def sent_after(self, moment: float) -> list[Answer]:
        return [a for a in self.answers if a.sent > moment]

    def served(self, start: float = 0.0, end: float = float("inf")) -> dict[str, int]:
        return dict(Counter(a.version for a in self.answers
                            if a.version is not None and start <= a.sent <= end))
