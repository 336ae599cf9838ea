"""Worker subprocess: runs student functions outside the grading process.

Started as `python -I -B -m labgrade.worker SUBMISSION_DIR` (-B: no __pycache__ written
into the submission). Requests arrive as JSON lines on the original stdin, replies leave
as JSON lines on the original stdout; before any student
code is imported both are moved aside and fds 0/1 point at /dev/null and the log, so a
student's `print` or `input` cannot touch the protocol.

A request: {"module": "deploy", "func": "generate_batch", "args": [...], "kwargs": {...},
"store": "llm" | null}. Arguments of the form {"$ref": NAME} are replaced by an object kept
from an earlier call's `store`. Modules named `labgrade.*` are the grader's own helpers
(probes); any other module is loaded from the submission directory by file path.
A reply: {"ok": true, "value": ..., "stored": bool} or
{"ok": false, "kind": "student" | "import" | "result", "error": str, "traceback": str}.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import sys
import traceback
from pathlib import Path
from types import ModuleType

_STORE: dict[str, object] = {}


def _load_student_module(root: Path, name: str) -> ModuleType:
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


def _resolve(value: object) -> object:
    if isinstance(value, dict):
        if set(value) == {"$ref"}:
            name = value["$ref"]
            if name not in _STORE:
                raise KeyError(f"no stored object named {name!r} (an earlier step failed)")
            return _STORE[name]
        return {k: _resolve(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v) for v in value]
    return value


def _student_traceback(exc: BaseException, root: Path) -> str:
    """The traceback frames that belong to the student's files (the rest is ours)."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if str(root) in f.filename]
    lines = traceback.format_list(frames[-6:]) if frames else []
    lines += traceback.format_exception_only(type(exc), exc)
    return "".join(lines).strip()


def _handle(request: dict, root: Path) -> dict:
    module_name = request["module"]
    try:
        if module_name.startswith("labgrade."):
            module = importlib.import_module(module_name)
        else:
            module = _load_student_module(root, module_name)
        func = getattr(module, request["func"], None)
        if not callable(func):
            return {"ok": False, "kind": "import",
                    "error": f"{module_name}.py has no function {request['func']}()",
                    "traceback": ""}
    except BaseException as exc:  # a syntax error or a failing import in student code
        return {"ok": False, "kind": "import",
                "error": f"importing your {module_name} module failed: "
                         f"{type(exc).__name__}: {exc}",
                "traceback": _student_traceback(exc, root)}
    try:
        args = _resolve(request.get("args", []))
        kwargs = _resolve(request.get("kwargs", {}))
        value = func(*args, **kwargs)
    except BaseException as exc:
        if isinstance(exc, (KeyboardInterrupt, SystemExit)) and not module_name.startswith("labgrade."):
            exc = RuntimeError(f"your code raised {type(exc).__name__}")
        return {"ok": False, "kind": "student",
                "error": f"{type(exc).__name__}: {exc}"[:2000],
                "traceback": _student_traceback(exc, root)}
    if request.get("store"):
        _STORE[request["store"]] = value
        return {"ok": True, "value": None, "stored": True}
    try:
        json.dumps(value)
    except (TypeError, ValueError) as exc:
        return {"ok": False, "kind": "result",
                "error": f"{module_name}.{request['func']}() returned {type(value).__name__}, "
                         f"which is not plain data (lists, dicts, str, numbers): {exc}",
                "traceback": ""}
    return {"ok": True, "value": value, "stored": False}


def main() -> None:
    root = Path(sys.argv[1]).resolve()
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
