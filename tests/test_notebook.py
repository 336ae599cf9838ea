"""Notebook submissions: the code cells tagged `grade` of mod.ipynb stand in for mod.py.

The conversion runs in the worker subprocess (never in the grading process); these tests
drive it through the real Worker and through a full grading of the miniature lab_9_9.
"""

from __future__ import annotations

import ast
import os
import sys
from pathlib import Path

import pytest

from conftest import COURSE, run_grade

nbformat = pytest.importorskip("nbformat", reason="nbformat is in requirements/vllm-cpu.lock")

from labgrade.notebook import NotebookError, convert  # noqa: E402
from labgrade.submission import StudentCodeError, Worker  # noqa: E402

SOLUTION = COURSE / "solutions" / "lab_9_9" / "mod.py"


def timed_items(*grades: dict) -> set[str]:
    """Items scored on a wall-clock measurement (lab_9_9's test_speed): on a loaded machine
    they may differ between two gradings of the same code, so comparisons leave them out."""
    return {i["name"] for g in grades for i in g["items"]
            if any(k.endswith("_seconds") for k in i.get("measured", {}))}


def make_notebook(path: Path, cells: list[tuple[str, list[str]]]) -> Path:
    """cells: (source, tags); markdown when the source starts with '# md:'."""
    nb = nbformat.v4.new_notebook()
    for source, tags in cells:
        if source.startswith("# md:"):
            cell = nbformat.v4.new_markdown_cell(source[5:])
        else:
            cell = nbformat.v4.new_code_cell(source)
        if tags:
            cell.metadata["tags"] = tags
        nb.cells.append(cell)
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path


def solution_cells() -> list[tuple[str, list[str]]]:
    """solutions/lab_9_9/mod.py cut into notebook cells the way a student would write it:
    imports first, one cell per function, with exploration cells in between (untagged)."""
    source = SOLUTION.read_text()
    lines = source.splitlines(True)
    tree = ast.parse(source)
    cells = [("# md:# Lab 9.9\nMy answers.", [])]
    for node in tree.body:
        start = (node.decorator_list[0].lineno if getattr(node, "decorator_list", None)
                 else node.lineno)
        cells.append(("".join(lines[start - 1:node.end_lineno]), ["grade"]))
        if isinstance(node, ast.FunctionDef):
            # exploration a student leaves behind: not graded, must not run
            cells.append((f"print({node.name}.__name__)\nraise SystemExit('exploring')", []))
    # a line magic inside a graded cell is skipped, not a syntax error
    first_code = next(i for i, (_, tags) in enumerate(cells) if tags)
    src, tags = cells[first_code]
    cells[first_code] = ("%load_ext autoreload\n" + src, tags)
    return cells


def worker_call(tmp_path: Path, sub: Path, func: str, *args):
    worker = Worker(sub, log_path=tmp_path / "logs" / "worker.log").start()
    try:
        return worker.call("mod", func, *args, timeout=30).value
    finally:
        worker.close()


def grade(tmp_path: Path, submission: Path, name: str) -> dict:
    grade_json, _ = run_grade("lab_9_9", "--submission", str(submission), "--profile", "cpu",
                              report_dir=tmp_path / f"reports-{name}", course=COURSE,
                              timeout=300, env={"SELFTEST_CONFTEST_MARK":
                                                str(tmp_path / "conftest-loaded")})
    return grade_json


@pytest.mark.slow
def test_notebook_scores_like_the_py_file(tmp_path):
    nb_sub = tmp_path / "nb"
    make_notebook(nb_sub / "mod.ipynb", solution_cells())
    from_py = grade(tmp_path, SOLUTION.parent, "py")
    from_nb = grade(tmp_path, nb_sub, "nb")
    assert from_py["max_score"] > 0 and from_py["score"] > 0
    assert from_nb["max_score"] == from_py["max_score"]
    timed = timed_items(from_py, from_nb)
    key = lambda g: {i["name"]: (i["status"], i["score"]) for i in g["items"]  # noqa: E731
                     if i["name"] not in timed}
    assert key(from_nb) == key(from_py) and len(key(from_py)) >= 5


def test_conversion_keeps_only_tagged_cells(tmp_path):
    path = make_notebook(tmp_path / "mod.ipynb", solution_cells())
    conversion = convert(path)
    assert "exploring" not in conversion.source
    assert "pass  # skipped: %load_ext autoreload" in conversion.source
    compile(conversion.source, "mod.py", "exec")  # the concatenated module is valid Python
    assert "def add(" in conversion.source and "# --- cell" in conversion.source


def test_no_tagged_cell_is_a_clear_error(tmp_path):
    sub = tmp_path / "sub"
    make_notebook(sub / "mod.ipynb", [("def add(a, b):\n    return a + b\n", [])])
    with pytest.raises(StudentCodeError) as info:
        worker_call(tmp_path, sub, "add", 1, 2)
    message = str(info.value)
    assert "no code cell tagged 'grade'" in message and "Cell Tags" in message


def test_duplicate_definitions_name_both_cells(tmp_path):
    sub = tmp_path / "sub"
    make_notebook(sub / "mod.ipynb", [
        ("def add(a, b):\n    return a - b\n", ["grade"]),
        ("x = 1", []),
        ("def add(a, b):\n    return a + b\n", ["grade"]),
    ])
    with pytest.raises(StudentCodeError) as info:
        worker_call(tmp_path, sub, "add", 1, 2)
    assert "add (cells 1 and 3)" in str(info.value)
    assert "more than one cell tagged 'grade'" in str(info.value)


def test_function_in_an_untagged_cell_says_which_cell_to_tag(tmp_path):
    sub = tmp_path / "sub"
    make_notebook(sub / "mod.ipynb", [
        ("import os", ["grade"]),
        ("def add(a, b):\n    return a + b\n", []),
    ])
    with pytest.raises(StudentCodeError) as info:
        worker_call(tmp_path, sub, "add", 1, 2)
    assert "add is defined in cell 2 of mod.ipynb" in str(info.value)
    assert "not tagged 'grade'" in str(info.value)
    with pytest.raises(StudentCodeError) as info:
        worker_call(tmp_path, sub, "ratio")
    assert "does not define ratio in any cell tagged 'grade'" in str(info.value)


def test_errors_in_cells_point_at_the_cell(tmp_path):
    sub = tmp_path / "sub"
    make_notebook(sub / "mod.ipynb", [
        ("# md:intro", []),
        ("def add(a, b):\n    return a + b + missing_name\n", ["grade"]),
    ])
    with pytest.raises(StudentCodeError) as info:
        worker_call(tmp_path, sub, "add", 1, 2)
    message = str(info.value)
    assert "mod.ipynb, cell 2" in message and "missing_name" in message
    make_notebook(sub / "mod.ipynb", [("def add(a, b)\n    return a\n", ["grade"])])
    with pytest.raises(NotebookError, match="cell 1.*syntax error"):
        convert(sub / "mod.ipynb")


def test_py_file_wins_over_notebook(tmp_path):
    sub = tmp_path / "sub"
    make_notebook(sub / "mod.ipynb", [("def add(a, b):\n    return 'nb'\n", ["grade"])])
    (sub / "mod.py").write_text("def add(a, b):\n    return 'py'\n")
    assert worker_call(tmp_path, sub, "add", 1, 2) == "py"


def test_conversion_never_runs_in_the_grading_process(tmp_path):
    sub = tmp_path / "sub"
    marker = tmp_path / "ran"
    make_notebook(sub / "mod.ipynb", [
        (f"open({str(marker)!r}, 'w').write(str(__import__('os').getpid()))\n"
         "def add(a, b):\n    return a + b\n", ["grade"])])
    assert worker_call(tmp_path, sub, "add", 1, 2) == 3
    assert marker.exists() and int(marker.read_text()) != os.getpid()
    assert "mod" not in sys.modules
