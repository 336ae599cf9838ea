"""Subprocess host for a student's ASGI app: import it, build it, serve it with uvicorn.

Started by `labgrade.runtime.app.AppServer` as

    python -I -m labgrade.probes.asgi_host SUBMISSION_DIR --module app --factory create_app \
        --model PATH --profile JSON --host 127.0.0.1 --port N --status-file PATH

Student code runs only here, never in the grading process. What happened before uvicorn
took over is written to the status file as one JSON object (`phase`: import | factory |
serving, and on failure `error` plus the student's own traceback frames), so the grader
can tell the student what broke without parsing the log. Everything else (uvicorn's log,
the engine's, the student's prints) goes to stdout/stderr, which the grader keeps in a file.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import traceback
from pathlib import Path

from labgrade.worker import load_student_module, student_traceback


def _write_status(path: Path | None, **status: object) -> None:
    if path is None:
        return
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(status))
    os.replace(tmp, path)


def _fail(status_file: Path | None, phase: str, exc: BaseException, root: Path) -> None:
    error = f"{type(exc).__name__}: {exc}"[:2000]
    _write_status(status_file, phase=phase, ok=False, error=error,
                  traceback=student_traceback(exc, root))
    traceback.print_exc()
    sys.stderr.flush()
    os._exit(3)


def _watch_lifespan(app, status_file: Path | None):
    """Wrap the app so the outcome of its lifespan start-up lands in the status file."""

    async def wrapped(scope, receive, send):
        if scope.get("type") != "lifespan":
            return await app(scope, receive, send)

        async def watching_send(message):
            kind = message.get("type")
            if kind == "lifespan.startup.complete":
                _write_status(status_file, phase="serving", ok=True)
            elif kind == "lifespan.shutdown.complete":
                _write_status(status_file, phase="stopped", ok=True)
            elif kind == "lifespan.shutdown.failed":
                _write_status(status_file, phase="shutdown", ok=False,
                              error=str(message.get("message") or "shutdown failed")[-2000:])
            elif kind == "lifespan.startup.failed":
                text = str(message.get("message") or "")
                lines = [line for line in text.strip().splitlines() if line.strip()]
                _write_status(status_file, phase="startup", ok=False,
                              error=lines[-1] if lines else "start-up failed",
                              traceback="\n".join(lines[-12:]))
            await send(message)

        return await app(scope, receive, watching_send)

    return wrapped


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("--module", default="app")
    parser.add_argument("--factory", default="create_app")
    parser.add_argument("--model", required=True)
    parser.add_argument("--profile", default="{}", help="JSON object handed to the factory")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--status-file", type=Path, default=None)
    parser.add_argument("--graceful-timeout", type=float, default=3.0,
                        help="seconds uvicorn lets in-flight requests finish after SIGTERM")
    parser.add_argument("--exit-status-from-shutdown", action="store_true",
                        help="after SIGTERM exit 0 when the app's lifespan shutdown completed, "
                             "4 otherwise (instead of dying by the re-raised SIGTERM)")
    args = parser.parse_args(argv)
    root = args.root.resolve()
    sys.path.append(str(root))  # the student's helper modules; never first

    _write_status(args.status_file, phase="import", ok=True)
    try:
        module = load_student_module(root, args.module)
    except BaseException as exc:  # noqa: BLE001 - a syntax error or failing import
        _fail(args.status_file, "import", exc, root)
    factory = getattr(module, args.factory, None)
    if not callable(factory):
        _fail(args.status_file, "import",
              AttributeError(f"{args.module}.py has no function {args.factory}()"), root)

    _write_status(args.status_file, phase="factory", ok=True)
    try:
        app = factory(args.model, json.loads(args.profile))
    except BaseException as exc:  # noqa: BLE001
        _fail(args.status_file, "factory", exc, root)
    if not callable(app):
        _fail(args.status_file, "factory",
              TypeError(f"{args.factory}() returned {type(app).__name__}, not an ASGI app "
                        "(return the FastAPI object)"), root)

    import uvicorn

    _write_status(args.status_file, phase="startup", ok=True)
    app = _watch_lifespan(app, args.status_file)
    # lifespan "on": the app's start-up (building the engine) must finish before uvicorn
    # accepts connections, so "answers HTTP" means "ready".
    if args.exit_status_from_shutdown:
        # uvicorn re-raises the SIGTERM it handled once it has drained; absorb it here so
        # the exit status says whether the app itself shut down cleanly
        signal.signal(signal.SIGTERM, lambda *_: None)
    uvicorn.run(app, host=args.host, port=args.port, lifespan="on", log_level="info",
                timeout_graceful_shutdown=args.graceful_timeout, access_log=False)
    sys.stdout.flush()
    sys.stderr.flush()
    stopped = json.loads(args.status_file.read_text()) if args.status_file else {}
    clean = not args.exit_status_from_shutdown or stopped.get("phase") == "stopped"
    os._exit(0 if clean else 4)  # engines leave non-daemon threads behind


if __name__ == "__main__":
    main()
