"""The student's app under uvicorn (labgrade.runtime.app.AppServer), launched in the
background so its ~30 s engine start-up overlaps the reference answers being fetched."""

from __future__ import annotations

from labgrade import Fail
from labgrade.runtime.app import AppServer
from labgrade.runtime.process import ServiceError, free_port
from labgrade.runtime.vllm import SERVER_ENV


def launch(lab, model: str, settings: dict, profile: dict) -> AppServer:
    lab.submission.require("app.py")
    server = AppServer(lab.submission.path, model=model, profile=profile, port=free_port(),
                       log_path=lab.run_dir / "student-app.log",
                       startup_timeout=settings["app_start_timeout"],
                       env={**SERVER_ENV, **settings.get("app_env", {})})
    lab.on_close(server.stop)
    server.start_in_background()
    return server


def serving(server: AppServer) -> None:
    """Wait until the app answers; Fail (about the student's code) if it never does or if
    it has died since."""
    try:
        server.wait()
    except ServiceError as exc:  # AppServer's message already names the student's step
        raise Fail(str(exc)) from None
    if not server.alive():
        raise Fail("your app stopped running during grading (an earlier request crashed "
                   "it?)\n--- last lines of its log ---\n" + server.process.log_tail(lines=20))
