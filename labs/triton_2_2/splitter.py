"""Lab triton_2_2 — A/B traffic splitting between versions, sticky per user (see README.md).

The grader calls `route` in a separate process, once per request, against a real Triton
server. `url` is host:port of its HTTP endpoint.
"""

from __future__ import annotations


def route(url: str, model: str, user_id: str, features: list[float],
          weights: dict[str, float]) -> str:
    """Send ONE inference request for `user_id` (input "FEATURES": one row of 4 floats) to
    the version of `model` chosen for this user, and return that version as a string.

    `weights` maps versions to their share of the users, e.g. {"2": 0.9, "3": 0.1}.
    Users must split between versions in proportion to the weights, and a given user must
    always get the same version (sticky assignment).

    TODO
    """
    raise NotImplementedError("route: TODO")
