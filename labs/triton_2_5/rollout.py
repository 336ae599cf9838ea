"""Lab triton_2_5 — zero-downtime rollout and rollback through Triton's model-control API.

The server runs in explicit model-control mode; `url` is host:port of its HTTP endpoint, as
`tritonclient.http.InferenceServerClient(url=...)` takes it. Versions are ints.
README.md ("3. Rollout") says what the grader checks while its clients keep sending requests.
"""

from __future__ import annotations


def rollout(url: str, model: str, version: int) -> int:
    """Serve only `version` of `model`, with no failed request on the way; return the
    version it replaced."""
    raise NotImplementedError("TODO: rollout() — new version beside the old, then only the new")


def rollback(url: str, model: str) -> int:
    """Serve again the version that served before the last rollout of `model` (from any
    process: keep that history where a new process finds it); return it."""
    raise NotImplementedError("TODO: rollback() — back to the version before the last rollout")
