"""Known-wrong fixtures are overlays on the solution (labgrade.overlay): materialising one is
deterministic and stays inside its folders, and every fixture in the repository holds only
files that really change the solution."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

from conftest import ROOT
from labgrade import cli
from labgrade.integrity import tree_digest
from labgrade.overlay import NOTE, OverlayError, find_overlay, materialise, overlay


def all_overlays():
    return sorted((lab.name, d.name) for lab in (ROOT / "fixtures").iterdir() if lab.is_dir()
                  for d in lab.glob("wrong_*") if d.is_dir())


def code_without_docs(path: Path) -> str | None:
    """A Python file's code with docstrings and comments gone (None: not Python)."""
    if path.suffix != ".py":
        return None
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) \
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value,
                                                                           str):
            body[0] = ast.Pass()
    return ast.dump(tree)


@pytest.mark.parametrize("lab, name", all_overlays())
def test_every_fixture_file_changes_the_solution(lab, name):
    item = overlay(ROOT, lab, name)
    files = item.changed_files()
    assert files, f"{item.files} changes nothing"
    for rel in files:
        mine, reference = item.files / rel, item.solution / rel
        if not reference.exists():
            continue  # a file the solution lacks is a change
        assert mine.read_bytes() != reference.read_bytes(), \
            f"{mine} equals {reference}: delete it from the fixture"
        code = code_without_docs(mine)
        assert code is None or code != code_without_docs(reference), \
            f"{mine} differs from {reference} only in docstrings/comments: delete it"


def test_materialised_overlay_is_the_solution_with_the_files_on_top(tmp_path):
    item = overlay(ROOT, "triton_2_1", "wrong_config_syntax")
    out = materialise(item, tmp_path / "a")
    solution_files = sorted(p.relative_to(item.solution) for p in item.solution.rglob("*")
                            if p.is_file() and "__pycache__" not in p.parts)
    assert sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file()) == solution_files
    changed = Path("model_repository/mlp/config.pbtxt")
    assert item.changed_files() == [changed]
    assert (out / changed).read_bytes() == (item.files / changed).read_bytes()
    assert (out / "client.py").read_bytes() == (item.solution / "client.py").read_bytes()
    again = materialise(item, tmp_path / "b")
    assert tree_digest(out) == tree_digest(again)


def test_a_note_stays_out_and_links_are_refused(tmp_path):
    course = tmp_path / "course"
    (course / "solutions" / "lab_1_1").mkdir(parents=True)
    (course / "solutions" / "lab_1_1" / "mod.py").write_text("x = 1\n")
    wrong = course / "fixtures" / "lab_1_1" / "wrong_x"
    wrong.mkdir(parents=True)
    (wrong / "mod.py").write_text("x = 2\n")
    (wrong / NOTE).write_text("x is off by one\n")
    out = materialise(find_overlay(wrong, course), tmp_path / "out")
    assert sorted(p.name for p in out.iterdir()) == ["mod.py"]
    assert (out / "mod.py").read_text() == "x = 2\n"
    secret = tmp_path / "secret.txt"
    secret.write_text("not yours\n")
    os.symlink(secret, wrong / "leak.txt")
    with pytest.raises(OverlayError, match="is a link"):
        materialise(find_overlay(wrong, course), tmp_path / "out2")


def test_names_that_escape_are_refused(tmp_path):
    for lab, name in (("lab_2_2", "../lab_2_1/wrong_order"), ("lab_2_2", "wrong_x/../.."),
                      ("../graders", "wrong_kv_gqa"), ("lab_2_2", "solutions")):
        with pytest.raises(OverlayError):
            overlay(ROOT, lab, name)
    item = overlay(ROOT, "lab_2_2", "wrong_kv_gqa")
    with pytest.raises(OverlayError, match="inside"):
        materialise(item, item.files / "out")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    with pytest.raises(OverlayError, match="not an empty folder"):
        materialise(item, tmp_path / "full")


def test_only_known_wrong_folders_are_overlays():
    assert find_overlay(ROOT / "solutions" / "lab_2_2", ROOT) is None
    assert find_overlay(ROOT / "tests/data/course/fixtures/lab_9_9/attack_hang",
                        ROOT / "tests/data/course") is None
    assert find_overlay(ROOT / "fixtures" / "lab_2_2" / "wrong_kv_gqa", ROOT).name == \
        "wrong_kv_gqa"


def test_cli_writes_the_overlay(tmp_path, capsys):
    out = tmp_path / "sub"
    assert cli.main(["overlay", "lab_2_2", "wrong_kv_gqa", "--out", str(out),
                     "--root", str(ROOT)]) == 0
    assert "--submission" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["kv_math.py", "quantize.py", "serving.py"]
    assert cli.main(["overlay", "lab_2_2", "wrong_nothing", "--out", str(tmp_path / "x"),
                     "--root", str(ROOT)]) == 2
    assert "pick one of" in capsys.readouterr().err
