"""Which of a lab's fixtures the selected items need (so expensive services start early,
and only when some selected item will use them)."""

from __future__ import annotations

import pytest

from labgrade.plugin import grading_session


def needed(request: pytest.FixtureRequest, *fixtures: str) -> bool:
    """True when a selected item of the requesting lab that is graded under this profile
    uses any of `fixtures` (directly or through other fixtures). Call it from a
    package-scoped fixture of the lab."""
    session = grading_session(request.config)
    lab_id = session.lab_of(request.node)
    wanted = set(fixtures)
    return any(session.lab_of(item) == lab_id and wanted & set(item.fixturenames)
               and session.in_scope(item) for item in request.session.items)
