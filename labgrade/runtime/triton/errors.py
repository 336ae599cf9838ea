"""What `labgrade.runtime.triton` raises (besides `ServiceError` for start-up failures).

    TritonError (RuntimeError)
     ├── TritonNotInstalled      the Triton environment or a bundled file is missing
     └── TritonRequestError      an API call answered with an error (status, server text)
          └── ModelLoadError     a model did not load: the server's reason, made readable
"""

from __future__ import annotations

from collections.abc import Sequence


class TritonError(RuntimeError):
    """Base class of everything labgrade.runtime.triton raises besides `ServiceError`."""


class TritonNotInstalled(TritonError):
    """The Triton environment (or a file the server needs) is missing."""


class TritonRequestError(TritonError):
    """A Triton API call failed. `status` is the HTTP status (0: no answer)."""

    def __init__(self, message: str, *, status: int = 0, server_message: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.server_message = server_message


class ModelLoadError(TritonRequestError):
    """A model did not load.

    `str(error)` is written for a student: which model, why (the server's own reason, e.g.
    the exception and the `model.py(line)` their `initialize()` raised, or the line and
    column of a config.pbtxt syntax error), with the repository path stripped.

    Attributes: `model`; `reason` (that explanation without the headline);
    `server_message` (the raw error text of the API answer); `log_lines` (the server log
    lines about this load); `status` (HTTP status, 0 for a timeout).
    """

    def __init__(self, model: str, reason: str, *, status: int = 0, server_message: str = "",
                 log_lines: Sequence[str] = ()) -> None:
        self.model = model
        self.reason = reason
        self.log_lines = list(log_lines)
        super().__init__(f"Triton could not load model '{model}':\n{_indent(reason)}",
                         status=status, server_message=server_message)


def _indent(text: str, prefix: str = "  ") -> str:
    return "\n".join(prefix + line if line.strip() else line for line in text.splitlines())
