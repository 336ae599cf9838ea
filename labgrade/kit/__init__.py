"""The grader kit: what a lab's graders import to build their fixtures and items.

    from labgrade.kit import Deferred, call_student, needed, score_curve, first_difference

See docs/writing-graders.md for how the pieces fit.
"""

from labgrade.kit.arrays import call_student_arrays, save_arrays
from labgrade.kit.curves import score_curve
from labgrade.kit.deferred import Deferred, Once
from labgrade.kit.openai_client import openai_client
from labgrade.kit.selection import needed
from labgrade.kit.student import call_student, profile_view
from labgrade.kit.text import first_difference

__all__ = ["Deferred", "Once", "call_student", "call_student_arrays", "first_difference",
           "needed", "openai_client", "profile_view", "save_arrays", "score_curve"]
