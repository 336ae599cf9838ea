"""labgrade.audit's pure parts: the mutation operators, the function -> items map, the
threshold proposal and the host overlay reader (no grading starts here)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from labgrade.audit import callmap, calibrate, mutate
from labgrade.labs import LabConfigError, load_lab

ROOT = Path(__file__).resolve().parents[1]
MINI = ROOT / "tests" / "data" / "audit_course"


def _mutated(source: str, operator: str) -> list[str]:
    return [m.source for m in mutate.mutants_of(source, "m.py") if m.operator == operator]


@pytest.mark.parametrize("name", sorted(mutate.OWN_OPERATORS))
def test_own_operators_do_what_their_examples_say(name):
    op = mutate.OWN_OPERATORS[name]
    for example in op.examples():
        got = _mutated(example.pre_mutation_code, name)
        assert got[example.occurrence] == example.post_mutation_code, (name, got)


def test_cosmic_ray_operators_are_all_found():
    ops = mutate.operators()
    assert set(mutate.COSMIC_RAY_OPERATORS) <= set(ops)
    assert [m.source for m in mutate.mutants_of("x = a < b\n", "m.py")
            if m.operator == "ReplaceComparisonOperator_Lt_LtE"] == ["x = a <= b\n"]


def test_annotations_and_main_block_are_left_alone():
    source = ('def f(x: int = 1) -> "int":\n    return x\n\n'
              'if __name__ == "__main__":\n    print(f(2 + 3))\n')
    found = list(mutate.mutants_of(source, "m.py"))
    assert found and all(m.line < 4 for m in found)
    assert {m.function for m in found} == {"f"}
    assert any("x: int = 2" in m.source for m in found)  # the default value is code


def test_ids_are_stable_and_same_bytecode_is_equivalent():
    source = "def f(a):\n    return a if True else a\n"
    first = [m.id for m in mutate.mutants_of(source, "m.py")]
    assert first == [m.id for m in mutate.mutants_of(source, "m.py")]
    assert len(set(first)) == len(first)
    # -0 and +0 fold to the same constant: equivalent, found without grading
    same = {m.operator: m.same_code for m in mutate.mutants_of("X = -0\n", "m.py")}
    assert same == {"ReplaceUnaryOperator_USub_UAdd": True, "NumberReplacer": False}


def test_callmap_follows_helpers_and_sends_fixture_calls_to_every_item(tmp_path):
    trace = tmp_path / "t.jsonl"
    trace.write_text("\n".join(json.dumps(e) for e in [
        {"item": "graders/x/test_a.py::test_one (call)", "module": "mod", "func": "entry"},
        {"item": "graders/x/test_a.py::test_two (call)", "module": "mod", "func": "entry"},
        {"item": "graders/x/test_a.py::test_three (call)", "module": "mod", "func": "other"},
        {"item": "graders/x/test_a.py::test_four (setup)", "module": "mod", "func": "built"},
    ]))
    source = ("def entry():\n    return helper()\n\ndef helper():\n    return 1\n\n"
              "def other():\n    return 2\n\ndef built():\n    return 3\n\n"
              "def unused():\n    return 4\n")
    calls = callmap.traced_calls([trace])
    assert callmap.items_for(calls, "mod.py", source, "helper") == {"test_one", "test_two"}
    assert callmap.items_for(calls, "mod.py", source, "other") == {"test_three"}
    assert callmap.items_for(calls, "mod.py", source, "built") is None
    assert callmap.items_for(calls, "mod.py", source, "unused") is None
    assert callmap.items_for(calls, "mod.py", source, "") is None  # module level


def test_propose_thresholds_and_refuse_a_host_without_room():
    curve = {"item": "test_x", "key": "ttft_speedup", "values": [1.9, 2.0, 2.1],
             "median": 2.0, "stdev": 0.1, "zero_at": 1.1, "full_at": 1.3}
    settings = {"ttft_zero_at": 1.1, "ttft_full_at": 1.3, "ngram_zero_at": 1.1}
    got = calibrate.propose(curve, settings, fraction=0.8, margin=0.1, baseline=1.0)
    assert got["settings"] == {"ttft_full_at": 1.6, "ttft_zero_at": 1.1}
    slow = dict(curve, median=1.2, values=[1.2, 1.2])
    refused = calibrate.propose(slow, settings, fraction=0.8, margin=0.1, baseline=1.0)
    assert refused["settings"] == {} and "cannot grade ttft_speedup fairly" in refused["skipped"]
    lower = dict(curve, key="latency", zero_at=2.0, full_at=1.0, median=0.5)
    assert calibrate.propose(lower, {"latency_zero_at": 2.0, "latency_full_at": 1.0},
                             fraction=0.5, margin=0.5, baseline=3.0)["settings"] == \
        {"latency_full_at": 1.0, "latency_zero_at": 2.5}


def test_host_overlay_is_read_checked_and_named(tmp_path, monkeypatch):
    course = tmp_path / "course"
    shutil.copytree(MINI, course)
    hosts = tmp_path / "hosts"
    hosts.mkdir()
    monkeypatch.setenv("LABGRADE_HOST_OVERLAYS", str(hosts))
    assert load_lab(course, "lab_9_7").profiles["cpu"].host_overlay == ""
    (hosts / "lab_9_7.cpu.toml").write_text("[settings]\nratio_full_at = 1.5\n")
    lab = load_lab(course, "lab_9_7")
    assert lab.settings("cpu")["ratio_full_at"] == 1.5
    assert lab.profiles["cpu"].host_overlay == str(hosts / "lab_9_7.cpu.toml")
    assert load_lab(course, "lab_9_7", host=False).settings("cpu")["ratio_full_at"] == 2.0
    (hosts / "lab_9_7.cpu.toml").write_text("[settings]\nnot_a_setting = 1\n")
    with pytest.raises(LabConfigError, match="not_a_setting.*no such setting"):
        load_lab(course, "lab_9_7")
    summary = {"lab": "lab_9_7", "profile": "cpu", "host": "h", "written_at": "t", "runs": 2,
               "select": "", "fraction": 0.8, "margin": 0.1, "wall_seconds": 1.0,
               "reference_scores": [30, 30],
               "curves": [{"key": "speedup", "item": "test_ratio", "median": 2.5,
                           "stdev": 0.0, "values": [2.5, 2.5], "baseline": 1.0,
                           "published": {"zero_at": 1.0, "full_at": 2.0},
                           "settings": {"ratio_full_at": 2.0, "ratio_zero_at": 1.1}}]}
    (hosts / "lab_9_7.cpu.toml").write_text(calibrate.to_toml(summary))
    assert load_lab(course, "lab_9_7").settings("cpu")["ratio_zero_at"] == 1.1


def test_never_called_needs_a_traced_module(tmp_path):
    trace = tmp_path / "t.jsonl"
    trace.write_text(json.dumps({"item": "g/test_a.py::test_one (call)", "module": "mod",
                                 "func": "entry"}))
    source = "def entry():\n    return helper()\n\ndef helper():\n    return 1\n\ndef gpu():\n    return 2\n"
    calls = callmap.traced_calls([trace])
    assert callmap.never_called(calls, "mod.py", source, "gpu")
    assert not callmap.never_called(calls, "mod.py", source, "helper")
    assert not callmap.never_called(calls, "app.py", "def route():\n    return 1\n", "route")
