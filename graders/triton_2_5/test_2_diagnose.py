"""Items: the student's diagnose() on HIDDEN broken repositories (broken.py: every
published variant of the seven fault classes, fresh model names each run). Each one is
loaded on the real server; diagnose() gets the server's own error and log, as an operator
would see them, never the grader's description."""

from __future__ import annotations

import time
from dataclasses import dataclass

import pytest

from labgrade import Fail
from labgrade.kit import Once, call_student
from labgrade.runtime.triton import ModelLoadError, TritonError
from labgrade.runtime.triton.logfile import file_size, read_from
from labgrade.scoring import GraderError

from .broken import BrokenCase, hidden_cases, write_files


@dataclass(frozen=True)
class Observed:
    case: BrokenCase
    error: str   # the load API's error message (repository paths made relative)
    log: str     # the server log written while it tried


@dataclass(frozen=True)
class Diagnosis:
    observed: Observed
    answer: dict | None
    problem: str = ""    # why there is no usable answer

    def field(self, key: str) -> str:
        value = (self.answer or {}).get(key)
        return value.strip().removeprefix("./") if isinstance(value, str) else ""


def observe(triton, cases: list[BrokenCase]) -> list[Observed]:
    """Load each hidden case on the server (its good models first) and keep what the server
    said. A case that loads is a grader bug."""
    server = triton.require_server()
    root = triton.repository
    for case in cases:
        write_files(root, case.files)
    prefix = str(root.resolve()) + "/"
    observed = []
    for case in cases:
        try:
            for need in case.needs:
                server.load(need, timeout=float(triton.settings["load_timeout"]))
        except ModelLoadError as exc:
            raise GraderError(f"hidden case {case.variant!r}: its good model did not load: "
                              f"{exc}") from None
        mark = file_size(server.log_path)
        try:
            server.load(case.model, timeout=float(triton.settings["load_timeout"]))
        except ModelLoadError as exc:
            error = exc.server_message
        else:
            raise GraderError(f"hidden case {case.variant!r} ({case.model}) loaded")
        log = read_from(server.log_path, mark)
        deadline = time.monotonic() + 1.0
        while case.model not in log and time.monotonic() < deadline:  # log lines trail
            time.sleep(0.05)
            log = read_from(server.log_path, mark)
        observed.append(Observed(case, error.replace(prefix, ""), log.replace(prefix, "")))
        for need in case.needs:
            try:
                server.unload(need, wait=False)
            except TritonError:
                pass
    return observed


@pytest.fixture(scope="package")
def diagnoses(triton, submission, rng) -> Once:
    """diagnose(model, error, log) on every hidden case, once for both items."""
    def produce() -> list[Diagnosis]:
        results = []
        for seen in observe(triton, hidden_cases(rng)):
            try:
                answer = call_student(submission, "diagnose", "diagnose", seen.case.model,
                                      seen.error, seen.log, returns=dict, timeout=30)
                results.append(Diagnosis(seen, answer))
            except Fail as exc:
                results.append(Diagnosis(seen, None, str(exc)))
        return results
    return Once(produce)


def _shown(seen: Observed) -> str:
    lines = [seen.error.strip()] + [line for line in seen.log.splitlines()
                                    if line[:1] in "EW" or "libprotobuf" in line]
    return " | ".join(lines)[:400]


def _report(score, wrong: list[str], total: int, what: str) -> None:
    right = total - len(wrong)
    score.measure(**{f"{what}_right": right, "hidden_cases": total})
    if not wrong:
        return
    message = (f"{right} of {total} hidden broken repositories got the right {what}:\n"
               + "\n".join(wrong[:8]) + (f"\n... and {len(wrong) - 8} more" if len(wrong) > 8
                                         else ""))
    if right == 0:
        raise Fail(message)
    score.set(right / total, message)


@pytest.mark.points(12)
def test_diagnose_names_the_fault(diagnoses, settings, score):
    """For each hidden broken repository, diagnose() names the fault class (one of the
    seven the README lists) and gives a fix (a non-empty text)."""
    results = diagnoses.get()
    classes = set(settings["fault_classes"])
    wrong = []
    for d in results:
        case = d.observed.case
        if d.answer is None:
            wrong.append(f"- {case.model} ({case.fault}): {d.problem[:300]}")
            continue
        fault, fix = d.field("fault"), d.field("fix")
        if fault != case.fault:
            hint = "" if fault in classes else f" (not one of {sorted(classes)})"
            wrong.append(f"- {case.model}: expected fault {case.fault!r}, got {fault!r}{hint}; "
                         f"the server said: {_shown(d.observed)}")
        elif not fix:
            wrong.append(f"- {case.model} ({case.fault}): no 'fix' text")
    _report(score, wrong, len(results), "fault")


@pytest.mark.points(4)
def test_diagnose_names_the_place(diagnoses, score):
    """For each hidden broken repository, diagnose()'s `where` is the path to fix, relative
    to the repository, as the README defines it (with `:LINE` where the server names a
    line)."""
    results = diagnoses.get()
    wrong = []
    for d in results:
        case = d.observed.case
        if d.answer is None:
            wrong.append(f"- {case.model} ({case.fault}): {d.problem[:300]}")
        elif d.field("where") != case.where:
            wrong.append(f"- {case.model} ({case.fault}): expected where {case.where!r}, got "
                         f"{d.field('where')!r}; the server said: {_shown(d.observed)}")
    _report(score, wrong, len(results), "where")
