"""Calling the student's functions: one wrapper, one message shape."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from labgrade import isolation
from labgrade.scoring import Fail
from labgrade.submission import StudentCodeError, Submission


def _type_name(expected: type | tuple[type, ...]) -> str:
    if isinstance(expected, tuple):
        return " or ".join(t.__name__ for t in expected)
    return expected.__name__


def call_student(submission: Submission, module: str, func: str, *args: object,
                 timeout: float = 60.0, returns: type | tuple[type, ...] | None = None,
                 **kwargs: object) -> object:
    """`module.func(*args, **kwargs)` in the submission's worker. A raise, a hang, a crash
    or a value of the wrong type fails the item as "<func>() failed: ..." naming the
    student's function and ending with the call that failed (the hidden case that caused
    it, as a mismatch message would show it)."""
    try:
        value = submission.call(module, func, *args, timeout=timeout, **kwargs)
    except StudentCodeError as exc:
        raise Fail(f"{func}() failed: {exc}\n{describe_call(func, args, kwargs)}") from None
    if returns is not None and (not isinstance(value, returns) or
                                (isinstance(value, bool) and bool not in _as_tuple(returns))):
        raise Fail(f"{func}() must return a {_type_name(returns)}, got "
                   f"{type(value).__name__}: {value!r:.200}\n{describe_call(func, args, kwargs)}")
    return value


def describe_call(func: str, args: tuple, kwargs: dict, limit: int = 400) -> str:
    shown = ", ".join([repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()])
    if len(shown) > limit:
        shown = shown[:limit] + " ..."
    return f"The call: {func}({shown})"


def _as_tuple(expected: type | tuple[type, ...]) -> tuple[type, ...]:
    return expected if isinstance(expected, tuple) else (expected,)


def profile_view(settings: dict, profile: str, *keys: str, **extra: object) -> dict:
    """The profile dict handed to a student's functions: the profile's name plus the named
    settings (each lab's README documents the keys it hands out)."""
    missing = [k for k in keys if k not in settings]
    if missing:
        raise KeyError(f"lab.toml's profile {profile!r} lacks {', '.join(missing)}")
    return {"name": profile, **{k: settings[k] for k in keys}, **extra}


def run_student_command(argv: Sequence[str | Path], *, cwd: str | Path, env: Mapping[str, str],
                        timeout: float, writable: Sequence[str | Path] = ()
                        ) -> subprocess.CompletedProcess:
    """A student's script run as a command (`python export.py IN OUT`), in the sandbox the
    worker runs in (labgrade.isolation): `writable` folders are the only ones it may write.
    Its output is captured as text; past `timeout` its whole process group is killed and
    subprocess.TimeoutExpired raised."""
    full, child_env = isolation.wrap(None, [str(a) for a in argv], env=dict(env), cwd=str(cwd),
                                     writable=writable)
    proc = subprocess.Popen(full, env=child_env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            errors="replace", start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.communicate()
        raise
    return subprocess.CompletedProcess(full, proc.returncode, out, err)
