"""A value that a package fixture produces without raising for a student's mistake.

Package fixtures (engines, servers, the student's configuration) are shared by several
items. If building one raised, pytest would turn every item that uses it into a setup
error blamed on the grader. Instead the fixture records what happened in a `Deferred`, and
each item calls `.require()`: the student's mistake then fails exactly the items that need
the thing, with the student's own error as the message.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

from labgrade.runtime.process import ServiceError
from labgrade.scoring import Fail, GraderError, Ungradable

T = TypeVar("T")
_UNSET = object()


class Deferred(Generic[T]):
    """`what` names the thing for messages ("your server", "the prefix-caching engine").

    `ready(value)` runs on every `.require()` before the value is handed out (e.g. wait
    for a server started in the background); a `ServiceError` it raises becomes the
    student's failure "<what> did not come up: ...".
    """

    def __init__(self, what: str, *, ready: Callable[[T], object] | None = None) -> None:
        self.what = what
        self._value: object = _UNSET
        self._failure: str | None = None
        self._ungradable: str | None = None
        self._ready = ready

    # -- recording
    def set(self, value: T) -> T:
        self._value = value
        return value

    def fail(self, message: str) -> None:
        """Record a student-facing reason; the first one recorded wins."""
        if self._failure is None:
            self._failure = message

    def ungradable(self, message: str) -> None:
        if self._ungradable is None:
            self._ungradable = message

    @contextmanager
    def recording(self, prefix: str = "") -> Iterator[None]:
        """Inside the block, a `Fail` (a student code error is one) is recorded, not raised:
        `with engine.recording("vLLM could not build your engine: "): ...`."""
        try:
            yield
        except Fail as exc:
            self.fail(f"{prefix}{exc}")
        except Ungradable as exc:
            self.ungradable(str(exc))

    # -- reading
    @property
    def ok(self) -> bool:
        return self._failure is None and self._ungradable is None and self._value is not _UNSET

    @property
    def failure(self) -> str | None:
        return self._failure

    @property
    def value(self) -> T | None:
        return None if self._value is _UNSET else self._value  # type: ignore[return-value]

    def require(self) -> T:
        """The value, or the recorded reason as this item's failure."""
        if self._ungradable is not None:
            raise Ungradable(self._ungradable)
        if self._failure is not None:
            raise Fail(self._failure)
        if self._value is _UNSET:
            raise GraderError(f"{self.what} was needed but never prepared")
        if self._ready is not None:
            try:
                self._ready(self._value)  # type: ignore[arg-type]
            except ServiceError as exc:
                self.fail(f"{self.what} did not come up: {exc}")
                raise Fail(self._failure) from None
        return self._value  # type: ignore[return-value]


class Once:
    """Run `produce` at most once, from inside the first item that needs its result (so it
    runs under that item's time budget), and hand every later item the same outcome: the
    value, or the same `Fail`."""

    def __init__(self, produce: Callable[[], T]) -> None:
        self._produce = produce
        self._done = False
        self._value: object = None
        self._failure: Fail | None = None

    def get(self) -> T:
        if not self._done:
            try:
                self._value = self._produce()
            except Fail as exc:
                self._failure = exc
            self._done = True
        if self._failure is not None:
            raise Fail(str(self._failure))
        return self._value  # type: ignore[return-value]
