"""The student's OpenAI-compatible server: their server_command(), launched in the
background (its start-up overlaps the engine items)."""

from __future__ import annotations

from labgrade import Fail
from labgrade.kit import call_student
from labgrade.runtime.process import free_port
from labgrade.runtime.vllm import OpenAIServer


def launch(lab, model: str, settings: dict, profile: dict) -> OpenAIServer:
    """Start the argv from the student's server_command(); `.wait()` until it answers."""
    port = free_port()
    argv = call_student(lab.submission, "deploy", "server_command", model, host="127.0.0.1",
                        port=port, served_model_name=settings["served_model_name"],
                        profile=profile, returns=list)
    if not (argv and all(isinstance(a, str) for a in argv)):
        raise Fail(f"server_command() must return a list of strings, got {argv!r:.200}")
    server = OpenAIServer(argv, port=port, log_path=lab.run_dir / "student-server.log",
                          startup_timeout=settings["server_start_timeout"])
    lab.on_close(server.stop)
    server.start_in_background()
    return server
