"""Notebook submissions: the code cells tagged `grade` of `<name>.ipynb` become module `<name>`.

Runs only inside the worker subprocess (`labgrade.worker.load_student_module` calls
`load_module` when `<name>.py` is absent and `<name>.ipynb` exists): the grading process
never reads student code as code.

Rules, each broken one a student-facing `NotebookError`:
- the file must be a valid notebook (nbformat 4);
- at least one code cell carries the tag `grade` (cell metadata `tags`);
- a top-level name (function, class, variable) is defined in at most one tagged cell;
- cell magics (`%%time`) cannot be graded; line magics and shell escapes (`%pip`, `!ls`)
  are skipped (replaced by `pass`, so line numbers stay right).

A function asked for but defined only in an untagged cell, or nowhere, becomes a stub that
raises a message naming the cell and the tag to add; the graders then report that message.
"""

from __future__ import annotations

import ast
import linecache
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

TAG = "grade"
_MAGIC = re.compile(r"^(\s*)([%!].*)$")


class NotebookError(ImportError):
    """A notebook that cannot become a module; the message speaks to the student."""


@dataclass
class Cell:
    number: int          # 1-based among all cells, as Jupyter shows them top to bottom
    source: str
    tagged: bool
    names: tuple[str, ...] = ()


@dataclass
class Conversion:
    path: Path
    cells: list[Cell]                                        # tagged code cells, in order
    untagged_names: dict[str, int] = field(default_factory=dict)  # name -> cell number

    def cell_filename(self, cell: Cell) -> str:
        return f"{self.path}, cell {cell.number}"

    @property
    def source(self) -> str:
        """The module as one Python file (for reading; load_module runs it cell by cell)."""
        parts = [f"# generated from {self.path.name}: the code cells tagged {TAG!r}\n"]
        for cell in self.cells:
            parts.append(f"\n# --- cell {cell.number} ---\n{cell.source.rstrip()}\n")
        return "".join(parts)


def _tags(cell) -> list[str]:
    tags = cell.get("metadata", {}).get("tags", []) or []
    return [str(t).strip().lower() for t in tags] if isinstance(tags, list) else []


def _strip_magics(source: str, number: int, filename: str) -> str:
    lines = source.splitlines()
    if lines and lines[0].lstrip().startswith("%%"):
        raise NotebookError(
            f"{filename} starts with the cell magic {lines[0].split()[0]!r}; cells tagged "
            f"{TAG!r} must be plain Python. Move the magic to an untagged cell.")
    out = []
    for line in lines:
        match = _MAGIC.match(line)
        out.append(f"{match.group(1)}pass  # skipped: {match.group(2)[:60]}" if match else line)
    return "\n".join(out) + "\n"


def _top_level_names(tree: ast.Module) -> tuple[str, ...]:
    names: list[str] = []

    def targets(node):
        if isinstance(node, ast.Name):
            names.append(node.id)
        elif isinstance(node, (ast.Tuple, ast.List)):
            for elt in node.elts:
                targets(elt)

    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.append(node.name)
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                targets(target)
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)) and isinstance(node.target, ast.Name):
            if isinstance(node, ast.AnnAssign) and node.value is None:
                continue
            if isinstance(node, ast.AugAssign):
                continue  # `x += 1` updates an existing name; not a second definition
            names.append(node.target.id)
    return tuple(dict.fromkeys(names))


def convert(path: Path) -> Conversion:
    """Read the notebook (as data) and check the rules above; nothing is executed."""
    import nbformat

    path = Path(path)
    try:
        nb = nbformat.read(str(path), as_version=4)
    except Exception as exc:  # noqa: BLE001 - any unreadable notebook is the student's to fix
        raise NotebookError(f"{path.name} is not a readable Jupyter notebook "
                            f"({type(exc).__name__}: {str(exc)[:300]}). Save it again from "
                            f"Jupyter, or hand in {path.stem}.py instead.") from None
    tagged: list[Cell] = []
    untagged_names: dict[str, int] = {}
    for number, raw in enumerate(nb.cells, start=1):
        if raw.get("cell_type") != "code":
            continue
        is_tagged = TAG in _tags(raw)
        filename = f"{path.name}, cell {number}"
        try:
            source = _strip_magics(raw.get("source", ""), number, filename)
            tree = ast.parse(source, filename=filename)
        except NotebookError:
            if is_tagged:
                raise
            continue
        except SyntaxError as exc:
            if not is_tagged:
                continue
            raise NotebookError(f"{filename} (tagged {TAG!r}) has a syntax error at line "
                                f"{exc.lineno}: {exc.msg}") from None
        cell = Cell(number, source, is_tagged, _top_level_names(tree))
        if is_tagged:
            tagged.append(cell)
        else:
            for name in cell.names:
                untagged_names.setdefault(name, number)
    if not tagged:
        raise NotebookError(
            f"{path.name} has no code cell tagged {TAG!r}, so there is nothing to grade. Tag "
            f"each cell that defines your functions: in JupyterLab open the property inspector "
            f"(gear icon, 'Common Tools' > 'Cell Tags'), in classic Jupyter use View > Cell "
            f"Toolbar > Tags, then add the tag {TAG!r} and save the notebook.")
    first_cell: dict[str, int] = {}
    duplicates: list[str] = []
    for cell in tagged:
        for name in cell.names:
            if name in first_cell:
                duplicates.append(f"{name} (cells {first_cell[name]} and {cell.number})")
            else:
                first_cell[name] = cell.number
    if duplicates:
        raise NotebookError(
            f"{path.name}: some names are defined in more than one cell tagged {TAG!r}: "
            + ", ".join(duplicates) + ". Keep one definition of each (delete the older "
            f"cell or remove its {TAG!r} tag) so it is clear which one is graded.")
    defined = set(first_cell)
    return Conversion(path, tagged, {n: c for n, c in untagged_names.items() if n not in defined})


def _stub(message: str):
    def missing(*args, **kwargs):
        raise NameError(message)
    missing.__labgrade_stub__ = True
    return missing


def load_module(name: str, path: Path) -> ModuleType:
    """Execute the tagged cells, in order, as module `name` (registered in sys.modules)."""
    conversion = convert(path)
    module = ModuleType(name)
    module.__file__ = str(path)
    module.__labgrade_notebook__ = conversion
    untagged = conversion.untagged_names
    nb_name = path.name

    def __getattr__(attr: str):  # PEP 562: only for names the tagged cells do not define
        if attr.startswith("_"):
            raise AttributeError(attr)
        if attr in untagged:
            return _stub(f"{attr} is defined in cell {untagged[attr]} of {nb_name}, but that "
                         f"cell is not tagged {TAG!r}, so it is not graded. Add the tag "
                         f"{TAG!r} to cell {untagged[attr]} and save the notebook.")
        return _stub(f"{nb_name} does not define {attr} in any cell tagged {TAG!r}. Define it "
                     f"in a code cell (start from the starter's {name}.py) and tag that cell "
                     f"{TAG!r}.")

    module.__getattr__ = __getattr__
    sys.modules[name] = module
    try:
        for cell in conversion.cells:
            filename = conversion.cell_filename(cell)
            linecache.cache[filename] = (len(cell.source), None,
                                         cell.source.splitlines(True), filename)
            exec(compile(cell.source, filename, "exec"), module.__dict__)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def main(argv: list[str] | None = None) -> int:
    """`python -m labgrade.notebook NOTEBOOK`: print the module the tagged cells make."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m labgrade.notebook NOTEBOOK.ipynb", file=sys.stderr)
        return 2
    try:
        print(convert(Path(args[0])).source, end="")
    except NotebookError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
