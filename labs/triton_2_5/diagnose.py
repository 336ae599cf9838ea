"""Lab triton_2_5 — name the fault behind a model that does not load.

`diagnose(model, error, log)` gets what an operator sees when `load_model` fails: the
server's error message (`error`) and the server log lines written while it tried (`log`),
with repository paths made relative. README.md ("2. Diagnose") lists the seven fault
classes and what `where` must say for each.
"""

from __future__ import annotations


def diagnose(model: str, error: str, log: str) -> dict:
    """{"fault": one of the seven classes, "where": the path to fix, "fix": what to do}."""
    raise NotImplementedError("TODO: diagnose() — classify the server's load error")
