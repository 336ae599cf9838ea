"""Items: the student's A/B splitter (splitter.route, run in the worker) — the split
measured on the server matches the weights, and a user always gets the same version."""

from __future__ import annotations

import random
import secrets
import time

import pytest

from labgrade import Fail
from labgrade.kit import call_student

from . import stats

MODEL = "classifier"


def _users(rng: random.Random, n: int, taken: set[str] = frozenset()) -> list[str]:
    users: list[str] = []
    seen = set(taken)
    while len(users) < n:
        user = f"user-{rng.getrandbits(64):016x}"
        if user not in seen:
            seen.add(user)
            users.append(user)
    return users


def _features(rng: random.Random) -> list[float]:
    return [round(rng.uniform(-1, 1), 4) for _ in range(4)]


def _route(submission, triton, user: str, features: list[float], weights: dict) -> str:
    value = call_student(submission, "splitter", "route", triton.http, MODEL, user, features,
                         weights, timeout=15)
    if str(value) not in weights:
        raise Fail(f"route() returned {value!r}; it must return the version that served the "
                   f"request, one of {sorted(weights)}")
    return str(value)


def _counts_settled(triton, versions: list[str], before: dict[int, float], expected: int,
                    timeout: float = 5.0) -> dict[int, float]:
    """Increases of nv_inference_count of `versions` once they add up to `expected` (or
    `timeout` passed). Other versions are left out: one that the set-up just unloaded can
    still be in the `before` scrape."""
    deadline = time.monotonic() + timeout
    while True:
        now = triton.version_counts(MODEL)
        delta = {int(v): now.get(int(v), 0.0) - before.get(int(v), 0.0) for v in versions}
        if sum(delta.values()) >= expected or time.monotonic() > deadline:
            return delta
        time.sleep(0.05)


def _seed(settings: dict) -> int:
    seed = settings.get("ab_seed")
    return int(seed) if seed is not None else secrets.randbits(32)


@pytest.mark.points(20)
def test_ab_split_matches_weights(submission, triton, settings, score):
    """One request from each of N distinct users drawn by the grader (a fresh random seed per
    run, recorded as `ab_seed`); the split is read from the server's per-version
    `nv_inference_count`, and version A's count K is tested against Binomial(N, w_A) with the
    exact two-sided test of `stats.py` at alpha = ab_alpha.

    Published setting: N = 400, weights {"2": 0.8, "3": 0.2}, alpha = 0.001. Acceptance
    region 293 <= K <= 345. A correct splitter fails with probability 0.089 % (< 1 %); a
    splitter that ignores the weights (50/50) passes with probability 2.1e-21, a 70/30 one
    with 8.5 % (power 91.5 %), a 90/10 one with 1.0 %, swapped weights with 2.6e-116. The
    returned labels must also agree with the server's per-version counts, and every call
    must reach the server as exactly one request.
    """
    triton.require()
    weights = {str(k): float(v) for k, v in settings["ab_weights"].items()}
    versions = sorted(weights, key=int)
    n, alpha = int(settings["ab_users"]), float(settings["ab_alpha"])
    seed = _seed(settings)
    rng = random.Random(seed)
    triton.deploy(MODEL, [int(v) for v in versions])
    before = triton.version_counts(MODEL)
    labels = {v: 0 for v in versions}
    started = time.monotonic()
    for user in _users(rng, n):
        labels[_route(submission, triton, user, _features(rng), weights)] += 1
    seconds = time.monotonic() - started
    delta = _counts_settled(triton, versions, before, n)
    served = {v: int(delta.get(int(v), 0)) for v in versions}
    version_a = versions[0]
    k, p = served[version_a], weights[version_a] / sum(weights.values())
    lo, hi = stats.acceptance_region(n, p, alpha)
    p_value = stats.two_sided_p_value(k, n, p)
    score.measure(ab_seed=seed, users=n, served=served, labels=labels,
                  acceptance_region=[lo, hi], p_value=round(p_value, 6),
                  requests_per_second=round(n / max(seconds, 1e-9), 1))
    total = sum(delta.values())
    if total != n:
        raise Fail(f"{n} calls of route() reached the server as {total:.0f} inferences of "
                   f"{MODEL} versions {versions}: send exactly one request (one row) per call, "
                   "to the version you return")
    if labels != served:
        raise Fail(f"route() said {labels} (version: users) but the server's per-version "
                   f"nv_inference_count says {served}: return the version that really served "
                   "the request (pass it as model_version)")
    if not lo <= k <= hi:
        raise Fail(f"version {version_a} served {k} of {n} users ({100 * k / n:.1f} %); with "
                   f"weights {weights} a correct splitter gives {lo}..{hi} "
                   f"({100 * lo / n:.1f}..{100 * hi / n:.1f} %) with probability "
                   f"{100 * (1 - alpha):.1f} % (exact binomial test, p = {p_value:.2g}). Split "
                   "users in proportion to the weights.")


def _requests_of(submission, triton, rng, user: str, repeats: int, weights: dict,
                 versions: list[str]) -> str:
    """`repeats` requests of one user: the version they all reached (server counters and
    route()'s answers must agree on one)."""
    before = triton.version_counts(MODEL)
    said = [_route(submission, triton, user, _features(rng), weights) for _ in range(repeats)]
    delta = _counts_settled(triton, versions, before, repeats)
    on = {str(v): int(c) for v, c in delta.items() if c}
    if len(on) != 1 or len(set(said)) != 1:
        raise Fail(f"user {user!r} made {repeats} requests: the server counted "
                   f"{on} (version: requests) and route() said {said}. The same user must "
                   "always get the same version: derive the choice from the user id (for "
                   "example a hash of it), not from a random draw per request.")
    (version, count), = on.items()
    if said[0] != version or count != repeats:
        raise Fail(f"user {user!r}: route() said version {said[0]} but the server counted "
                   f"{count} requests on version {version}")
    return version


def _fresh_process(submission, hash_seed: str) -> None:
    """The next call of a student function runs in a new worker process, with Python's
    string hashing salted by `hash_seed` (each process of a real deployment has its own)."""
    submission.worker_env["PYTHONHASHSEED"] = hash_seed
    submission.worker().kill()


@pytest.mark.points(10)
def test_ab_assignment_is_sticky(submission, triton, settings, score):
    """`sticky_users` new users, `sticky_repeats` requests each, half of them before and
    half after the splitter's process is replaced by a new one (as a restart or a second
    replica would): per user, the server's per-version counters must show every request on
    one version, and route() must name that version each time. A per-request random draw
    with the right weights passes a user with probability 0.8^4 + 0.2^4 = 0.41, all 25 users
    with probability 2e-10; a choice from Python's per-process salted hash() moves about a
    third of the users at the restart."""
    triton.require()
    weights = {str(k): float(v) for k, v in settings["ab_weights"].items()}
    versions = sorted(weights, key=int)
    seed = _seed(settings)
    rng = random.Random(seed ^ 0x5EED)
    triton.deploy(MODEL, [int(v) for v in versions])
    repeats = int(settings["sticky_repeats"])
    before_restart = max(1, repeats // 2)
    users = _users(rng, int(settings["sticky_users"]))
    hash_seeds = [str(rng.randrange(1, 2**32)) for _ in range(2)]
    assigned: dict[str, int] = {v: 0 for v in versions}
    try:
        _fresh_process(submission, hash_seeds[0])
        first = {user: _requests_of(submission, triton, rng, user, before_restart, weights,
                                    versions) for user in users}
        _fresh_process(submission, hash_seeds[1])
        moved = []
        for user in users:
            version = _requests_of(submission, triton, rng, user, repeats - before_restart,
                                   weights, versions)
            if version != first[user]:
                moved.append(f"{user!r}: {first[user]} -> {version}")
            assigned[version] += 1
    finally:
        submission.worker_env.pop("PYTHONHASHSEED", None)
        submission.worker().kill()  # later items get a process without the forced salt
    score.measure(ab_seed=seed, users_per_version=assigned, moved_at_restart=len(moved))
    if moved:
        raise Fail(f"{len(moved)} of {len(users)} users got another version after route()'s "
                   f"process was restarted (e.g. {'; '.join(moved[:3])}): the choice must "
                   "not depend on the process. Python's hash() of a str is salted per "
                   "process (PYTHONHASHSEED); use a stable hash such as "
                   "hashlib.sha256(user_id.encode()), and keep no per-process table of users.")
