"""Which items a mutated function can affect, from a traced grading of the solution.

Under `labgrade audit` every worker call is noted with the item that made it
(labgrade.submission's LABGRADE_CALL_TRACE). A function's items are those that called it,
or called a function of the same file that refers to it (directly or further down). A call
made while a fixture was being set up (a package fixture builds an engine from a student
function, say) serves items nobody can list, so such a function — like module-level code,
and anything the trace never saw (a model file a server loads, an app under uvicorn) —
maps to every item (None).
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

EVERY_ITEM = None


def traced_calls(paths: list[Path]) -> dict[tuple[str, str], set[str] | None]:
    """(module, func) -> the item names that called it; None when a fixture's set-up did."""
    calls: dict[tuple[str, str], set[str] | None] = {}
    for path in paths:
        if not path.is_file():
            continue
        for line in path.read_text().splitlines():
            entry = json.loads(line)
            key = (entry["module"], entry["func"])
            current = entry["item"]  # "graders/x/test_a.py::test_b (call)"
            name = current.split("::")[-1].split(" ")[0].split("[")[0]
            if not current.endswith("(call)") or not name:
                calls[key] = EVERY_ITEM
            elif calls.get(key, set()) is not EVERY_ITEM:
                calls.setdefault(key, set()).add(name)
    return calls


def _references(source: str) -> dict[str, set[str]]:
    """Top-level function/class name -> the names its body refers to."""
    out: dict[str, set[str]] = {}
    for node in ast.parse(source).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out[node.name] = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)} | \
                {n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)}
    return out


def module_name(file: str) -> str:
    return file[:-3].replace("/", ".") if file.endswith(".py") else file


def items_for(calls: dict[tuple[str, str], set[str] | None], file: str, source: str,
              function: str) -> set[str] | None:
    """The items a mutation inside `function` of `file` can change (None: every item)."""
    if not function:
        return EVERY_ITEM
    module = module_name(file)
    refs = _references(source)
    entries = {func: items for (mod, func), items in calls.items() if mod == module}
    if not entries:
        return EVERY_ITEM
    found: set[str] = set()
    for entry, items in entries.items():
        if function in _reachable(entry, refs):
            if items is EVERY_ITEM:
                return EVERY_ITEM
            found |= items
    return found or EVERY_ITEM


def never_called(calls: dict[tuple[str, str], set[str] | None], file: str, source: str,
                 function: str) -> bool:
    """True when the traced grading called functions of `file` through the worker but
    never `function`, nor anything that reaches it: no item of this run exercises it (an
    item out of scope for the profile, say). A mutant there is not a survivor."""
    module = module_name(file)
    entries = [func for (mod, func) in calls if mod == module]
    if not function or not entries:
        return False
    refs = _references(source)
    return not any(function in _reachable(entry, refs) for entry in entries)


def _reachable(start: str, refs: dict[str, set[str]]) -> set[str]:
    seen, todo = {start}, [start]
    while todo:
        for name in refs.get(todo.pop(), ()):
            if name in refs and name not in seen:
                seen.add(name)
                todo.append(name)
    return seen
