"""Worker subprocess: runs student functions (and grader probes) outside the grading process.

Started as `python -I -B -m labgrade.worker ROOT [--trusted-root COURSE_ROOT]` (-B: no
__pycache__ written into the submission). ROOT is the submission directory (or, for a
grader-owned worker that never imports student code, its run directory). Requests arrive
as JSON lines on the original stdin, replies leave as JSON lines on the original stdout;
before any student code is imported both are moved aside and fds 0/1 point at /dev/null and
the log, so a student's `print` or `input` cannot touch the protocol.

A request: {"module": "deploy", "func": "generate_batch", "args": [...], "kwargs": {...},
"store": "llm" | null}. Arguments of the form {"$ref": NAME} are replaced by an object kept
from an earlier call's `store`. Trusted modules are the grader's own: `labgrade.*` (probes)
and, only in a worker given --trusted-root, `graders.<id>.<module>` from the course; any
other module is loaded from ROOT by file path.

A reply: {"ok": true, "value": ..., "stored": bool} or {"ok": false, "kind": "student" |
"import" | "result", "blame": "student" | "grader", "error": str, "traceback": str}.
Who is to blame: a failure in a student module is the student's; a failure in a trusted
module is the grader's (its full traceback goes to the staff), unless the trusted code
raised `labgrade.scoring.StudentFault` (or raised from one) or the traceback runs through a
file under ROOT (student code called from a probe).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import sys
import traceback
from pathlib import Path
from types import ModuleType

from labgrade.scoring import StudentFault

TRUSTED_PACKAGES = ("labgrade", "graders")
_LABGRADE_DIR = Path(__file__).resolve().parent

_STORE: dict[str, object] = {}
_trusted_root: Path | None = None  # the course root, in a worker given --trusted-root


def load_student_module(root: Path, name: str) -> ModuleType:
    if name in sys.modules:
        return sys.modules[name]
    if not name.isidentifier():
        raise ImportError(f"{name!r} is not a module name")
    path = root / f"{name}.py"
    if not path.is_file():
        notebook = root / f"{name}.ipynb"
        if notebook.is_file():  # the code cells tagged `grade` become the module
            from labgrade import notebook as _notebook
            return _notebook.load_module(name, notebook)
        raise FileNotFoundError(f"{path.name} is missing from your submission ({root})")
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def is_trusted(module_name: str) -> bool:
    """Whether `module_name` is the grader's own code (never the student's)."""
    return module_name.split(".", 1)[0] in TRUSTED_PACKAGES and "." in module_name


def allow_graders(trusted_root: Path) -> None:
    """Make `graders.<id>.<module>` importable from the course at `trusted_root` (and
    nothing else of the course: `graders` becomes a package whose only path is there)."""
    global _trusted_root
    package = ModuleType("graders")
    package.__path__ = [str(trusted_root / "graders")]
    package.__package__ = "graders"
    sys.modules["graders"] = package
    _trusted_root = trusted_root


def _resolve(value: object) -> object:
    if isinstance(value, dict):
        if set(value) == {"$ref"}:
            name = value["$ref"]
            if name not in _STORE:
                # the call that makes it failed, or this process replaced one that crashed
                # or hung: either way an earlier step of the student's broke
                raise StudentFault(f"no object named {name!r} is kept in this process: the "
                                   "step that makes it failed, or the process was restarted "
                                   "after your code crashed or hung")
            return _STORE[name]
        return {k: _resolve(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v) for v in value]
    return value


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception and those it was raised from or while handling (as Python prints)."""
    chain: list[BaseException] = []
    while exc is not None and not any(seen is exc for seen in chain):  # no student __eq__
        chain.append(exc)
        exc = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
    return chain


def _in_submission(filename: str, root: Path) -> bool:
    path = Path(filename)  # a notebook cell's is "<root>/x.ipynb, cell 3"
    return path.is_relative_to(root) and not path.is_relative_to(_LABGRADE_DIR)


def _student_frames(exc: BaseException, root: Path) -> list[traceback.FrameSummary]:
    return [frame for link in reversed(_chain(exc))
            for frame in traceback.extract_tb(link.__traceback__)
            if _in_submission(frame.filename, root)]


def student_traceback(exc: BaseException, root: Path) -> str:
    """The traceback frames that belong to the student's files (the rest is ours)."""
    frames = _student_frames(exc, root)
    lines = traceback.format_list(frames[-6:]) if frames else []
    lines += traceback.format_exception_only(type(exc), exc)
    return "".join(lines).strip()


def _describe(exc: BaseException) -> str:
    """`Type: message`, even for an exception whose __str__ raises."""
    try:
        text = str(exc)
    except Exception:  # noqa: BLE001 - a student's exception may refuse to print
        text = f"<unprintable {type(exc).__name__}>"
    return f"{type(exc).__name__}: {text}"[:2000]


def _student_fault(exc: BaseException) -> StudentFault | None:
    return next((e for e in _chain(exc) if isinstance(e, StudentFault)), None)


def _failure(kind: str, exc: BaseException, root: Path, *, trusted: bool,
             what: str) -> dict:
    """The reply for a failed request, with the blame decided (see the module docstring)."""
    fault = _student_fault(exc)
    if fault is not None:
        frames = _student_frames(exc, root)
        detail = "".join(traceback.format_list(frames[-6:])).strip() if frames else ""
        return {"ok": False, "kind": kind, "blame": "student",
                "error": str(fault)[:2000], "traceback": detail}
    if not trusted or _student_frames(exc, root):
        prefix = f"importing your {what} module failed: " if kind == "import" else ""
        return {"ok": False, "kind": kind, "blame": "student",
                "error": (prefix + _describe(exc))[:2000],
                "traceback": student_traceback(exc, root)}
    return {"ok": False, "kind": kind, "blame": "grader",
            "error": _describe(exc),
            "traceback": "".join(traceback.format_exception(exc))[-8000:]}


def _import(module_name: str, root: Path) -> ModuleType:
    if not is_trusted(module_name):
        return load_student_module(root, module_name)
    if module_name.startswith("graders.") and _trusted_root is None:
        raise ImportError(f"{module_name} is grader code: only a worker started with "
                          "trusted_root (one that never imports student code) may import it")
    return importlib.import_module(module_name)


def _handle(request: dict, root: Path) -> dict:
    module_name = request["module"]
    trusted = is_trusted(module_name)
    try:
        module = _import(module_name, root)
        func = getattr(module, request["func"], None)
    except BaseException as exc:  # noqa: BLE001 - a syntax error or a failing import
        return _failure("import", exc, root, trusted=trusted, what=module_name)
    if not callable(func):
        return {"ok": False, "kind": "import", "blame": "grader" if trusted else "student",
                "error": f"{module_name}.py has no function {request['func']}()",
                "traceback": ""}
    try:
        args = _resolve(request.get("args", []))
        kwargs = _resolve(request.get("kwargs", {}))
        value = func(*args, **kwargs)
    except BaseException as exc:  # noqa: BLE001 - whatever it raised is the reply
        if isinstance(exc, (KeyboardInterrupt, SystemExit)) and not trusted:
            exc = RuntimeError(f"your code raised {type(exc).__name__}")
        return _failure("student", exc, root, trusted=trusted, what=module_name)
    if request.get("store"):
        _STORE[request["store"]] = value
        return {"ok": True, "value": None, "stored": True}
    try:
        json.dumps(value)
    except (TypeError, ValueError) as exc:
        return {"ok": False, "kind": "result", "blame": "grader" if trusted else "student",
                "error": f"{module_name}.{request['func']}() returned {type(value).__name__}, "
                         f"which is not plain data (lists, dicts, str, numbers): {exc}",
                "traceback": ""}
    return {"ok": True, "value": value, "stored": False}


def main() -> None:
    parser = argparse.ArgumentParser(description="labgrade's worker (started by Worker)")
    parser.add_argument("root", type=Path)
    parser.add_argument("--trusted-root", type=Path, default=None)
    options = parser.parse_args()
    root = options.root.resolve()
    if options.trusted_root is not None:
        allow_graders(options.trusted_root.resolve())
    proto_in = os.fdopen(os.dup(0), "r", encoding="utf-8")
    proto_out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(2, 1)  # student prints go to the log (stderr), never to the protocol
    sys.stdout = sys.stderr
    sys.path.append(str(root))  # for the student's own helper modules; never first
    for line in proto_in:
        if not line.strip():
            continue
        request = json.loads(line)
        if request.get("op") == "exit":
            break
        reply = _handle(request, root)
        proto_out.write(json.dumps(reply) + "\n")
        proto_out.flush()
    os._exit(0)  # engines leave non-daemon threads behind; do not wait for them


if __name__ == "__main__":
    main()
