"""The live alert run: a grader-owned tritonserver (a slow model and a flaky one) scraped by
a real Prometheus that evaluates the student's rules (labgrade.runtime.prometheus), while
the grader idles, loads the slow model, makes the flaky one fail, and unloads it. Each
phase says which alerts must fire and which must stay quiet; a watcher records every
alert's state changes (the timeline that goes into grade.json)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .broken import write_files
from .loadgen import ClientThreads

SLOW, FLAKY = "slow", "flaky"
# unloaded for TritonModelNotReady: not the flaky model, whose unload can wait forever on a
# request its raising execute() left without a response (seen in CI, in 3 gradings of 30)
STEADY = "steady"
SLOW_SECONDS = 0.05

_MODEL_PY = '''import time

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            x = pb_utils.get_input_tensor_by_name(request, "X").as_numpy()
            time.sleep({sleep})
            if {flaky} and x.reshape(-1)[0] < 0:
                # raised, not an error response: the backend then reports the request as
                # failed (nv_inference_request_failure)
                raise pb_utils.TritonModelException("negative input rejected")
            responses.append(pb_utils.InferenceResponse([pb_utils.Tensor("Y", x * 2)]))
        return responses
'''


def _config(name: str) -> str:
    return (f'name: "{name}"\nbackend: "python"\nmax_batch_size: 0\n'
            'input [ { name: "X" data_type: TYPE_FP32 dims: [ 4 ] } ]\n'
            'output [ { name: "Y" data_type: TYPE_FP32 dims: [ 4 ] } ]\n'
            "instance_group [ { kind: KIND_CPU count: 1 } ]\n")


def write_repository(root: Path) -> Path:
    write_files(root, {
        f"{SLOW}/config.pbtxt": _config(SLOW),
        f"{SLOW}/1/model.py": _MODEL_PY.format(sleep=SLOW_SECONDS, flaky=False),
        f"{FLAKY}/config.pbtxt": _config(FLAKY),
        f"{FLAKY}/1/model.py": _MODEL_PY.format(sleep=0.0, flaky=True),
        f"{STEADY}/config.pbtxt": _config(STEADY),
        f"{STEADY}/1/model.py": _MODEL_PY.format(sleep=0.0, flaky=False),
    })
    return root


@dataclass
class AlertWatcher:
    """Polls Prometheus' active alerts; keeps (t, alertname, model, state) changes, t in
    seconds since the watch began."""

    prometheus: object
    interval: float = 0.25
    changes: list[tuple[float, str, str, str]] = field(default_factory=list)
    _current: dict[tuple[str, str], str] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> "AlertWatcher":
        self.started = time.monotonic()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _poll(self) -> None:
        while not self._stop.is_set():
            try:
                alerts = self.prometheus.alerts()
            except Exception:  # noqa: BLE001 - one missed poll; the next one counts
                alerts = None
            if alerts is not None:
                self._record(alerts)
            self._stop.wait(self.interval)

    def _record(self, alerts: list[dict]) -> None:
        now = round(time.monotonic() - self.started, 2)
        seen = {(a["labels"].get("alertname", ""), a["labels"].get("model", "")): a["state"]
                for a in alerts}
        for key in set(seen) | set(self._current):
            state = seen.get(key, "inactive")
            if self._current.get(key, "inactive") != state:
                self.changes.append((now, key[0], key[1], state))
        self._current = {k: v for k, v in seen.items()}

    def state(self, alertname: str, model: str) -> str:
        return self._current.get((alertname, model), "inactive")

    def active_since(self, moment: float) -> list[tuple[float, str, str, str]]:
        """Changes to pending/firing at or after `moment` (seconds since the watch began)."""
        return [c for c in self.changes if c[0] >= moment and c[3] != "inactive"]

    def wait_firing(self, alertname: str, model: str, timeout: float) -> float | None:
        """Seconds it took to see the alert firing, None if it did not within `timeout`."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if self.state(alertname, model) == "firing":
                return round(time.monotonic() - start, 2)
            time.sleep(0.1)
        return None

    def now(self) -> float:
        return time.monotonic() - self.started

    def timeline(self) -> list[list]:
        return [list(c) for c in self.changes]


@dataclass
class Traffic(ClientThreads):
    """`clients` threads sending to `model`; `bad_every` > 0 makes every n-th request of a
    client invalid for the flaky model (a negative first value), which then fails."""

    server: object
    model: str
    clients: int
    bad_every: int = 0
    pause: float = 0.0   # between a client's requests (a fast model would starve the scrape)
    sent: int = 0
    failed: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _client(self) -> None:
        import tritonclient.http as httpclient
        from tritonclient.utils import InferenceServerException

        client = self.server.http_client(network_timeout=30.0)
        n = 0
        try:
            while not self._stop.is_set():
                n += 1
                x = np.ones((4,), dtype=np.float32)
                if self.bad_every and n % self.bad_every == 0:
                    x[0] = -1.0
                tensor = httpclient.InferInput("X", [4], "FP32")
                tensor.set_data_from_numpy(x)
                try:
                    client.infer(self.model, [tensor])
                    ok = True
                except (InferenceServerException, OSError):
                    ok = False
                with self._lock:
                    self.sent += 1
                    self.failed += not ok
                if self.pause:
                    self._stop.wait(self.pause)
        finally:
            client.close()
