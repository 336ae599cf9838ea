"""Lab triton_2_2 — model lifecycle through Triton's model-control API (see README.md).

The grader calls these functions in a separate process, against a real Triton server in
explicit model-control mode. `url` is host:port of its HTTP endpoint, as
`tritonclient.http.InferenceServerClient(url=...)` takes it. Versions are ints.
"""

from __future__ import annotations


def load(url: str, model: str) -> None:
    """Load `model` as its repository configuration says (its version_policy decides which
    versions are served).

    TODO
    """
    raise NotImplementedError("load: TODO")


def unload(url: str, model: str) -> None:
    """Unload `model` — every version of it, and no other model. Return once it is gone.

    TODO
    """
    raise NotImplementedError("unload: TODO")


def serve_versions(url: str, model: str, versions: list[int]) -> None:
    """Make the (loaded) `model` serve exactly `versions` — no more, no fewer — keeping
    the rest of its configuration as it is.

    TODO: load the model again with a configuration override whose version_policy lists
    these versions. An override replaces the WHOLE configuration.
    """
    raise NotImplementedError("serve_versions: TODO")


def rollback(url: str, model: str) -> int:
    """The newest version `model` serves is bad. Serve only the newest version below it that
    is ready now, with no failed request while you switch, and return that version.

    TODO
    """
    raise NotImplementedError("rollback: TODO")
