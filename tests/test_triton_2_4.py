"""triton_2_4 graded for real (embedded tritonserver started with the submission's own
flags): the solution gets full marks, the starter 0, each known-wrong submission loses the
item it targets while a neighbouring item still passes. Every grading must leave no
tritonserver or stub process behind (run_grade checks). The flags parser is checked
without a server."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from conftest import ROOT, items_by_name, run_grade, verdict
from labgrade.runtime.triton import triton_available

LAB = "triton_2_4"
WRONG = ROOT / "fixtures" / LAB
TRITON_OK, TRITON_WHY = triton_available()
needs_triton = pytest.mark.skipif(not TRITON_OK, reason=f"embedded Triton missing: {TRITON_WHY}")

# fixture -> (-k selection, item that must fail, item that must still pass, message parts)
KNOWN_WRONG = {
    "wrong_ensemble_wiring": ("ensemble or cache", "test_ensemble_matches_reference",
                              "test_response_cache", ["Triton could not load model 'classify'"]),
    "wrong_batching_long_delay": ("batching_latency or sequence", "test_batching_latency_slo",
                                  "test_sequence_state", ["the SLO is 150 ms"]),
    "wrong_batching_instances_only": ("batching", "test_batching_throughput",
                                      "test_batching_latency_slo", ["1.00 requests per"]),
    "wrong_cache_on_sampler": ("cache or ensemble", "test_response_cache",
                               "test_ensemble_matches_reference", ["sampler is served with"]),
    "wrong_bad_cache_flag": ("cache or ensemble", "test_response_cache",
                             "test_ensemble_matches_reference",
                             ["did not start with your flags", "one-megabyte"]),
    "wrong_restricted_http_only": ("restricted or warmup", "test_restricted_endpoints",
                                   "test_warmup_before_ready", ["--grpc-restricted-protocol"]),
    "wrong_sequence_shared_state": ("sequence or warmup", "test_sequence_state",
                                    "test_warmup_before_ready", ["TOTAL is"]),
    "wrong_sequence_ignores_restart": ("sequence or restricted", "test_sequence_state",
                                       "test_restricted_endpoints", ["(START)"]),
    "wrong_rate_limit_equal_priority": ("rate_limiter or sequence", "test_rate_limiter_priorities",
                                        "test_sequence_state", ["p95 latency while bulk"]),
    "wrong_rate_limit_too_greedy": ("rate_limiter or sequence", "test_rate_limiter_priorities",
                                    "test_sequence_state", ["Triton could not load model 'bulk'"]),
}
# must keep a timing item passing: graded with the machine to itself (tests/grading_slots.py)
TIMED_NEIGHBOUR = {"wrong_batching_instances_only"}


def _flags_module():
    spec = importlib.util.spec_from_file_location("triton_2_4_flags",
                                                  ROOT / "graders" / LAB / "flags.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


# ------------------------------------------------------------------ the flags, no server
def test_flags_parser_reads_restrictions_and_refuses_other_flags():
    flags = _flags_module()
    parsed = flags.parse_flags((ROOT / "solutions" / LAB / "server_flags.txt").read_text())
    assert not parsed.problems
    assert parsed.http.apis == {"model-repository"} and parsed.http.header == "admin-key"
    assert parsed.api_headers == {"admin-key": "lab24-s3cret"}
    assert parsed.grpc_headers() == {"triton-grpc-protocol-admin-key": "lab24-s3cret"}
    assert parsed.has("--cache-config") and parsed.has("--rate-limit")
    only_resource = flags.parse_flags("--rate-limit-resource=accel:1\n")
    assert not only_resource.has("--rate-limit")  # a flag that is a prefix of another
    bad = flags.parse_flags("# c\n--http-port=1\n--model-control-mode=none\n"
                            "--http-restricted-api=model-repository\n--cache-config\n")
    assert len(bad.problems) == 4 and bad.args == []
    assert "line 2" in bad.problems[0] and "'--http-port' is not a flag" in bad.problems[0]
    assert "<header>=<key>" in bad.problems[2] and "line 5" in bad.problems[3]
    assert flags.parse_flags("").args == [] and flags.parse_flags("").http is None
    starter = flags.parse_flags((ROOT / "labs" / LAB / "server_flags.txt").read_text())
    assert starter.args == [] and not starter.problems


def test_every_overlay_changes_the_solution():
    for fixture in KNOWN_WRONG:
        files = [p for p in (WRONG / fixture).rglob("*") if p.is_file()]
        assert files, fixture
        for path in files:
            original = ROOT / "solutions" / LAB / path.relative_to(WRONG / fixture)
            assert original.is_file() and original.read_bytes() != path.read_bytes(), path
            assert "WRONG" in path.read_text(), path
    assert set(KNOWN_WRONG) == {p.name for p in WRONG.iterdir() if p.name.startswith("wrong_")}


# ------------------------------------------------------------------ real gradings
def grade(*extra: str, report_dir: Path, alone: bool | None = None) -> tuple[dict, str]:
    result, proc = run_grade(LAB, *extra, report_dir=report_dir, timeout=300, alone=alone)
    return result, proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def solution(tmp_path_factory) -> tuple[dict, str]:
    return grade("--solution", report_dir=tmp_path_factory.mktemp("solution") / "r")


@pytest.mark.slow
@needs_triton
def test_solution_gets_full_marks(solution):
    grade_json, out = solution
    failed = {i["name"]: i["message"] for i in grade_json["items"] if i["status"] != "passed"}
    assert not failed, failed
    assert grade_json["score"] == grade_json["max_score"] == 100
    assert "TOTAL 100/100" in out and "Traceback" not in out


@pytest.mark.slow
@needs_triton
def test_solution_measurements_carry_their_thresholds(solution):
    items = items_by_name(solution[0])
    batching = items["test_batching_throughput"]["measured"]
    assert batching["curve:throughput_ratio"] == {"zero_at": 1.5, "full_at": 3.0}
    assert batching["throughput_ratio"] >= 3.0 and len(batching["throughput_ratio_rounds"]) >= 5
    assert batching["mean_batch_size"] >= 2.0
    slo = items["test_batching_latency_slo"]["measured"]
    assert slo["limit:p95_ms"] == {"max": 150} and 0 < slo["p95_ms"] <= 150
    cache = items["test_response_cache"]["measured"]
    assert cache["cache_hits_stats"] == cache["cache_hits_metric"] == cache["expected_hits"] == 15
    steps = items["test_ensemble_matches_reference"]["measured"]["steps"]
    assert set(steps) == {"preprocess", "mlp", "postprocess", "classify"}
    restricted = items["test_restricted_endpoints"]["measured"]
    assert restricted["http_status"] == {"no key": 403, "a wrong key": 403, "the key": 200}


@pytest.mark.slow
@needs_triton
def test_starter_scores_zero(tmp_path):
    grade_json, _ = grade("--starter", report_dir=tmp_path / "r")
    assert grade_json["score"] == 0 and grade_json["max_score"] == 100
    statuses = {i["status"] for i in grade_json["items"]}
    assert statuses == {"failed"}, [(i["name"], i["status"], i["message"][:300])
                                    for i in grade_json["items"]]


@pytest.mark.slow
@needs_triton
@pytest.mark.parametrize("fixture", sorted(KNOWN_WRONG))
def test_known_wrong_submission_loses_its_item(tmp_path, fixture):
    selection, must_fail, must_pass, words = KNOWN_WRONG[fixture]
    grade_json, _ = grade("--submission", str(WRONG / fixture), "-k", selection,
                          report_dir=tmp_path / "r", alone=fixture in TIMED_NEIGHBOUR or None)
    items = items_by_name(grade_json)
    assert items[must_fail]["status"] == "failed" and items[must_fail]["score"] == 0, \
        verdict(items[must_fail])
    for word in words:
        assert word in items[must_fail]["message"], (word, items[must_fail]["message"])
    assert items[must_pass]["status"] == "passed", verdict(items[must_pass])
