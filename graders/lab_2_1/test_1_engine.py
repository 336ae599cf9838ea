"""Items: the engine is built from the student's arguments, inside the memory budget."""

import pytest

from labgrade import Fail

GiB = 1 << 30


@pytest.mark.points(10)
def test_engine_within_memory_budget(student_engine, settings, score):
    kwargs = student_engine.require_kwargs()
    if student_engine.budget_problems:
        raise Fail("your engine arguments break the memory budget: "
                   + "; ".join(student_engine.budget_problems)
                   + ". Set the KV-cache size explicitly (README, 'Memory budget').")
    student_engine.require_built()
    rss, budget = student_engine.rss_bytes, settings["rss_budget_bytes"]
    score.measure(worker_rss_bytes=rss, build_seconds=round(student_engine.build_seconds, 2))
    if rss > budget:
        raise Fail(f"the process holding your engine uses {rss / GiB:.2f} GiB; the budget is "
                   f"{budget / GiB:.2f} GiB. Lower the KV cache or max_model_len.")
    facts = student_engine.facts
    if facts["max_model_len"] != settings["max_model_len"]:
        raise Fail(f"max_model_len is {facts['max_model_len']}; this lab serves prompts up to "
                   f"{settings['max_model_len']} tokens, so set max_model_len to that")
    assert kwargs is not None


@pytest.mark.points(10)
def test_engine_builds_from_your_arguments(student_engine, settings, score):
    student_engine.require_built()
    facts = student_engine.facts
    score.measure(build_seconds=round(student_engine.build_seconds, 2))
    if student_engine.gpu_free_before is not None:
        score.measure(gpu_free_before_engine_gib=round(student_engine.gpu_free_before / GiB, 2),
                      gpu_free_after_engine_gib=round(student_engine.gpu_free_after / GiB, 2))
    if facts["dtype"] != settings["dtype"]:
        raise Fail(f"the engine runs in {facts['dtype']}; the {settings['device']} profile "
                   f"expects dtype={settings['dtype']!r} (README, 'Profiles')")
