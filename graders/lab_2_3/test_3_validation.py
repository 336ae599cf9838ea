"""Items: bad requests are refused with 422 before they reach the engine."""

import httpx
import pytest

from labgrade import Fail

from . import prompts


def _send(app_url: str, endpoint: str, body) -> tuple[int, str]:
    kwargs = {"json": body} if not isinstance(body, str) else {
        "content": body, "headers": {"content-type": "application/json"}}
    try:
        response = httpx.post(app_url + endpoint, timeout=60, **kwargs)
    except httpx.HTTPError as exc:
        return 0, f"{type(exc).__name__}: {exc}"
    return response.status_code, response.text[:200]


def _rewrites_422(app_url: str) -> bool:
    """Whether a plain type error (which FastAPI refuses with 422 from the declared types
    alone) comes back as 400: then an exception handler rewrites the status, and the
    constraints may well be declared."""
    what, endpoint, body = prompts.WRONG_TYPES[0]
    return _send(app_url, endpoint, body)[0] == 400


def _grade_cases(app_url: str, cases, score, kind: str) -> None:
    wrong, statuses = [], set()  # statuses other than 422
    for what, endpoint, body in cases:
        status, text = _send(app_url, endpoint, body)
        if status != 422:
            statuses.add(status)
            got = f"answered {status}" if status else f"failed ({text})"
            wrong.append(f"{endpoint} with {what} {got}")
    # the app must survive bad input
    status, text = _send(app_url, "/v1/completions",
                         {"prompt": "The engine", "max_tokens": 2, "temperature": 0})
    if status != 200:
        raise Fail(f"after the bad requests a valid /v1/completions answered {status or text}: "
                   "bad input must not break the service")
    passed = len(cases) - len(wrong)
    score.measure(**{f"{kind}_refused": passed, f"{kind}_cases": len(cases)})
    if not wrong:
        return
    hint = ("Declare the constraints on your pydantic request models (README, "
            "'Validation') so FastAPI answers 422 before your handler runs.")
    if 400 in statuses and _rewrites_422(app_url):
        hint = ("Your app answers 400 where FastAPI answers 422, even for a request of the "
                "wrong type: an exception handler (for RequestValidationError, or a "
                "catch-all one) rewrites FastAPI's 422. Remove it, or make it answer 422 "
                "(README, 'Validation').")
    message = (f"{passed} of {len(cases)} bad requests were refused with 422. Not refused: "
               + "; ".join(wrong) + ". " + hint)
    if passed == 0:
        raise Fail(message)
    score.set(passed / len(cases), message)


@pytest.mark.points(5)
def test_rejects_wrong_types(app_url, score):
    _grade_cases(app_url, prompts.WRONG_TYPES, score, "type_errors")


@pytest.mark.points(10)
def test_rejects_out_of_range_values(app_url, score):
    _grade_cases(app_url, prompts.OUT_OF_RANGE, score, "range_errors")
