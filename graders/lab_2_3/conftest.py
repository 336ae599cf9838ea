"""Shared state for the lab_2_3 graders: the student's app under uvicorn, the reference.

Session fixtures here are per lab (this directory). None of them raises on a student
mistake: they record what happened, and each item calls `.require()` so a mistake costs
the items that need the thing, with the student's own error as feedback. Traffic that
several items read (the concurrent load, the metrics check) is sent once, from inside the
first item that needs it (`Once`), so it runs under that item's time budget. The app is
launched before the first item (its ~30 s engine start-up then overlaps the reference
engine's answers being fetched).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from labgrade import Fail
from labgrade.fixtures import *  # noqa: F403  (lab, submission, settings, run_dir)
from labgrade.runtime.app import AppServer
from labgrade.runtime.process import ServiceError, free_port
from labgrade.runtime.vllm import SERVER_ENV, ReferenceEngine, resolve_model

from . import prompts, traffic


def student_profile(settings: dict, profile_name: str) -> dict:
    """The dict handed to create_app(model, profile) (README documents its keys)."""
    return {"name": profile_name, "device": settings["device"],
            "served_model_name": settings["served_model_name"],
            "max_model_len": settings["max_model_len"],
            "engine_kwargs": dict(settings["engine_kwargs"])}


@pytest.fixture(scope="package")
def model(settings) -> str:
    return resolve_model(settings["model"])


@pytest.fixture(scope="package")
def profile_view(settings, lab) -> dict:
    return student_profile(settings, lab.profile)


# ------------------------------------------------------------------------- the app
class StudentApp:
    """The student's app, launched in the background; items call `.require()`."""

    def __init__(self) -> None:
        self.server: AppServer | None = None
        self.error: str | None = None

    def require(self) -> AppServer:
        if self.server is None:
            raise Fail(f"your app could not be launched: {self.error}")
        try:
            self.server.wait()
        except ServiceError as exc:
            raise Fail(str(exc)) from None
        if not self.server.alive():
            raise Fail("your app stopped running during grading (an earlier request crashed "
                       "it?)\n--- last lines of its log ---\n"
                       + self.server.process.log_tail(lines=20))
        return self.server


@pytest.fixture(scope="package", autouse=True)
def _launch_app_early(request: pytest.FixtureRequest) -> None:
    """Start the app (and fetch the reference answers) before the first item when any
    selected item needs them: the start-ups then overlap instead of adding up."""
    here = Path(__file__).parent
    mine = [item for item in request.session.items if here in Path(item.path).parents]
    if any("student_app" in item.fixturenames for item in mine):
        request.getfixturevalue("student_app")
    if any("expected" in item.fixturenames for item in mine):
        request.getfixturevalue("expected")


@pytest.fixture(scope="package")
def student_app(lab, submission, model, settings, profile_view) -> StudentApp:
    state = StudentApp()
    try:
        submission.require("app.py")
    except Fail as exc:
        state.error = str(exc)
        return state
    server = AppServer(submission.path, model=model, profile=profile_view, port=free_port(),
                       log_path=lab.run_dir / "student-app.log",
                       startup_timeout=settings["app_start_timeout"],
                       env={**SERVER_ENV, **settings.get("app_env", {})})
    lab.on_close(server.stop)
    server.start_in_background()
    state.server = server
    return state


# ------------------------------------------------------------------ reference answers
@dataclass
class Expected:
    """Reference answers (greedy, from the grader's own engine) and the model's tokenizer,
    fetched in a background thread so the app's start-up and the reference overlap."""

    reference: ReferenceEngine
    model: str
    answers: dict = field(default_factory=dict)
    tokenizer: object = None
    error: BaseException | None = None
    _thread: threading.Thread | None = None

    def start(self) -> "Expected":
        self._thread = threading.Thread(target=self._fetch, daemon=True, name="expected")
        self._thread.start()
        return self

    def _fetch(self) -> None:
        try:
            from transformers import AutoTokenizer

            self.tokenizer = AutoTokenizer.from_pretrained(self.model)
            for prompt_list, max_tokens in self._requests():
                for prompt, text in zip(prompt_list, self.reference.greedy(prompt_list,
                                                                           max_tokens)):
                    self.answers[(prompt, max_tokens)] = text
        except BaseException as exc:  # noqa: BLE001 - reported by the items that need it
            self.error = exc

    def _requests(self) -> list[tuple[list[str], int]]:
        return [(prompts.COMPLETION, prompts.COMPLETION_MAX_TOKENS),
                ([self.chat_prompt(prompts.CHAT)], prompts.CHAT_MAX_TOKENS),
                ([prompts.STREAM_PROMPT], prompts.STREAM_MAX_TOKENS),
                ([self.chat_prompt(prompts.STREAM_CHAT)], prompts.STREAM_CHAT_MAX_TOKENS)]

    def _ready(self) -> None:
        if self._thread is not None:
            self._thread.join()
        if self.error is not None:
            raise ServiceError(f"the reference answers are unavailable: {self.error}")

    def chat_prompt(self, messages: list[dict]) -> str:
        if self.tokenizer is None:
            self._ready()
        return self.tokenizer.apply_chat_template(messages, add_generation_prompt=True,
                                                  tokenize=False)

    def greedy(self, prompt: str, max_tokens: int) -> str:
        self._ready()
        key = (prompt, max_tokens)
        if key not in self.answers:
            self.answers[key] = self.reference.greedy([prompt], max_tokens)[0]
        return self.answers[key]

    def prompt_tokens(self, prompt: str) -> int:
        self._ready()
        return len(self.tokenizer(prompt, add_special_tokens=True)["input_ids"])


@pytest.fixture(scope="package")
def reference(lab, model, settings) -> ReferenceEngine:
    engine = ReferenceEngine(model, settings, lab.profile, lab.run_dir)
    lab.on_close(engine.close)
    return engine


@pytest.fixture(scope="package")
def expected(reference, model) -> Expected:
    return Expected(reference, model).start()


# ---------------------------------------------------------- traffic shared by items
class Once:
    """A result computed by the first item that asks, inside its call (so under its time
    budget); later askers get the same result, or the same exception."""

    def __init__(self, compute) -> None:
        self._compute = compute
        self._done = False
        self._value = None
        self._error: BaseException | None = None

    def get(self):
        if not self._done:
            try:
                self._value = self._compute()
            except BaseException as exc:  # noqa: BLE001 - replayed to every asker
                self._error = exc
            self._done = True
        if self._error is not None:
            raise self._error
        return self._value


@pytest.fixture(scope="package")
def load_run(student_app, settings) -> Once:
    """Concurrent streams with /health polled meanwhile (traffic.LoadRun), for two items."""
    return Once(lambda: traffic.concurrent_streams(student_app.require().base_url, settings))


@pytest.fixture(scope="package")
def metrics_run(student_app, settings) -> Once:
    """Known traffic between two scrapes of /metrics (traffic.MetricsRun), for three items."""
    return Once(lambda: traffic.metrics_traffic(student_app.require().base_url, settings))


@pytest.fixture
def app_url(student_app) -> str:
    return student_app.require().base_url


