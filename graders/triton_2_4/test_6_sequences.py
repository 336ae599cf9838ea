"""Task 7: sequence batching. `counter` keeps a running total per sequence (correlation
id); START begins a new total. Hidden sequences are interleaved request by request, repeat
values, and one id is restarted in the middle."""

from __future__ import annotations

import numpy as np
import pytest

from labgrade import Fail


def _script(rng: np.random.Generator, sequences: int) -> list[tuple[int, int, bool]]:
    """(sequence id, value, start) in send order: round-robin over the sequences, the same
    value twice in a row somewhere, the first id restarted halfway."""
    ids = [int(i) for i in rng.choice(np.arange(1000, 100000), size=sequences, replace=False)]
    steps = []
    for step in range(6):
        for n, sid in enumerate(ids):
            value = int(rng.integers(-50, 50))
            if step == 2 and n == 1:
                value = steps[-sequences][1]  # repeats this sequence's previous value
            steps.append((sid, value, step == 0 or (step == 3 and n == 0)))
    return steps


@pytest.mark.points(10)
def test_sequence_state(sequences_models, settings, score):
    import tritonclient.grpc as grpcclient
    from tritonclient.utils import InferenceServerException

    server = sequences_models.require_model("counter")
    script = _script(np.random.default_rng(), settings["sequences"])
    totals: dict[int, int] = {}
    client = server.grpc_client()
    try:
        for n, (sid, value, start) in enumerate(script):
            totals[sid] = value if start else totals[sid] + value
            tensor = grpcclient.InferInput("VALUE", [1, 1], "INT64")
            tensor.set_data_from_numpy(np.array([[value]], dtype=np.int64))
            case = (f"request {n + 1}: sequence {sid}, VALUE {value}"
                    f"{' (START)' if start else ''}")
            try:
                result = client.infer("counter", [tensor], sequence_id=sid,
                                      sequence_start=start)
            except InferenceServerException as exc:
                raise Fail(f"{case}: counter answered with an error: {exc}") from None
            got = result.as_numpy("TOTAL")
            if got is None or int(np.asarray(got).reshape(-1)[0]) != totals[sid]:
                raise Fail(f"{case}: TOTAL is {None if got is None else got.reshape(-1).tolist()}"
                           f", expected {totals[sid]} (the sum since this sequence's START; "
                           "state is per correlation id, START resets it)")
    finally:
        client.close()
    score.measure(requests=len(script), sequences=settings["sequences"])
