"""Items: the engine is built from the student's arguments, inside the memory budget."""

import pytest

from labgrade import Fail

from .engine import budget_problems

GiB = 1 << 30


@pytest.mark.points(10)
def test_engine_within_memory_budget(engine_args, student_engine, settings, score):
    problems = budget_problems(engine_args.require(), settings)
    if problems:
        raise Fail("your engine arguments break the memory budget: " + "; ".join(problems)
                   + ". Set the KV-cache size explicitly (README, 'Memory budget').")
    built = student_engine.require()
    rss, budget = built.rss_bytes, settings["rss_budget_bytes"]
    score.measure(worker_rss_bytes=rss, build_seconds=round(built.build_seconds, 2),
                  **{"limit:worker_rss_bytes": {"max": budget}})
    if rss > budget:
        raise Fail(f"the process holding your engine uses {rss / GiB:.2f} GiB; the budget is "
                   f"{budget / GiB:.2f} GiB. Lower the KV cache or max_model_len.")
    if built.facts["max_model_len"] != settings["max_model_len"]:
        raise Fail(f"max_model_len is {built.facts['max_model_len']}; this lab serves prompts "
                   f"up to {settings['max_model_len']} tokens, so set max_model_len to that")


@pytest.mark.points(10)
def test_engine_builds_from_your_arguments(student_engine, settings, score):
    built = student_engine.require()
    score.measure(build_seconds=round(built.build_seconds, 2))
    if built.gpu_free_before is not None:
        score.measure(gpu_free_before_engine_gib=round(built.gpu_free_before / GiB, 2),
                      gpu_free_after_engine_gib=round(built.gpu_free_after / GiB, 2))
    if built.facts["dtype"] != settings["dtype"]:
        raise Fail(f"the engine runs in {built.facts['dtype']}; the {settings['device']} "
                   f"profile expects dtype={settings['dtype']!r} (README, 'Profiles')")
