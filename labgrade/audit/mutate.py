"""Mutants of a solution's Python files: one small plausible mistake each.

The operators are cosmic-ray's (a maintained mutation-testing library; only its parso-based
operator classes are used, not its runner): arithmetic and comparison operators, boolean
and unary operators, off-by-one numbers, break/continue, zero-iteration loops. cosmic-ray
has no operator for three mistakes the course's students make, so they are added here in
its Operator shape: a call's argument dropped, two neighbouring arguments swapped, a
`return <value>` that returns a constant (None).

A mutant's id is stable while the file is unchanged: `<file>:<line>:<operator>:<n>` (n: the
operator's n-th mutation on that line), so a list of equivalent mutants can name it.
"""

from __future__ import annotations

import difflib
import types
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import parso
import parso.python.tree as tree
from cosmic_ray.ast import Visitor, get_ast
from cosmic_ray.operators.operator import Example, Operator
from cosmic_ray.operators.provider import OperatorProvider

# cosmic-ray's catalogue has every operator-to-operator pair (~200 for binary operators
# alone); a grading per mutant makes that unaffordable, so each operator gets the one or
# two replacements a student plausibly writes.
COSMIC_RAY_OPERATORS = (
    "ReplaceBinaryOperator_Add_Sub", "ReplaceBinaryOperator_Sub_Add",
    "ReplaceBinaryOperator_Mul_Div", "ReplaceBinaryOperator_Div_Mul",
    "ReplaceBinaryOperator_FloorDiv_Div", "ReplaceBinaryOperator_Div_FloorDiv",
    "ReplaceBinaryOperator_Mod_FloorDiv", "ReplaceBinaryOperator_Pow_Mul",
    "ReplaceComparisonOperator_Eq_NotEq", "ReplaceComparisonOperator_NotEq_Eq",
    "ReplaceComparisonOperator_Lt_LtE", "ReplaceComparisonOperator_LtE_Lt",
    "ReplaceComparisonOperator_Gt_GtE", "ReplaceComparisonOperator_GtE_Gt",
    "ReplaceComparisonOperator_Is_IsNot", "ReplaceComparisonOperator_IsNot_Is",
    "ReplaceUnaryOperator_USub_UAdd", "ReplaceUnaryOperator_Delete_Not",
    "ReplaceTrueWithFalse", "ReplaceFalseWithTrue", "ReplaceAndWithOr", "ReplaceOrWithAnd",
    "ReplaceBreakWithContinue", "ReplaceContinueWithBreak",
    "NumberReplacer", "ZeroIterationForLoop",
)


# ------------------------------------------------------------ operators cosmic-ray lacks
def _call_arguments(node) -> list | None:
    """The argument nodes of a call trailer `( ... )`, or None when `node` is none."""
    if node.type != "trailer" or node.children[0].value != "(" or len(node.children) != 3:
        return None
    inner = node.children[1]
    if inner.type == "arglist":
        return [c for c in inner.children if not (c.type == "operator" and c.value == ",")]
    return [inner]


def _with_arguments(trailer, codes: list[str]):
    """`trailer` (a call's parentheses) holding the arguments `codes` instead."""
    fresh = parso.parse(f"f({', '.join(codes)})").children[0].children[1]
    trailer.children = fresh.children
    for child in trailer.children:
        child.parent = trailer
    return trailer


def _positional(arg) -> bool:
    return arg.type != "argument" and not (arg.type == "operator")


class DropArgument(Operator):
    """Leaves one argument out of a call: `f(a, b)` -> `f(b)`, `f(a)` -> `f()`."""

    def mutation_positions(self, node):
        for arg in _call_arguments(node) or ():
            yield (arg.start_pos, arg.end_pos)

    def mutate(self, node, index):
        kept = [a for i, a in enumerate(_call_arguments(node)) if i != index]
        return _with_arguments(node, [a.get_code(include_prefix=False) for a in kept])

    @classmethod
    def examples(cls):
        return (Example("f(a, b)", "f(b)"), Example("f(a, b)", "f(a)", occurrence=1),
                Example("f(a)", "f()"))


class SwapArguments(Operator):
    """Swaps two neighbouring positional arguments: `f(a, b)` -> `f(b, a)`."""

    def mutation_positions(self, node):
        args = _call_arguments(node) or []
        for left, right in zip(args, args[1:]):
            if _positional(left) and _positional(right):
                yield (left.start_pos, right.end_pos)

    def mutate(self, node, index):
        args = _call_arguments(node)
        pairs = [(i, i + 1) for i in range(len(args) - 1)
                 if _positional(args[i]) and _positional(args[i + 1])]
        i, j = pairs[index]
        codes = [a.get_code(include_prefix=False) for a in args]
        codes[i], codes[j] = codes[j], codes[i]
        return _with_arguments(node, codes)

    @classmethod
    def examples(cls):
        return (Example("f(a, b, c)", "f(b, a, c)"),
                Example("f(a, b, c)", "f(a, c, b)", occurrence=1))


class ConstantReturn(Operator):
    """`return <expression>` -> `return None`: a function that forgot its result."""

    def mutation_positions(self, node):
        if node.type == "return_stmt" and len(node.children) == 2 \
                and node.children[1].get_code(include_prefix=False) != "None":
            yield (node.start_pos, node.end_pos)

    def mutate(self, node, index):
        value = node.children[1]
        node.children[1] = tree.Keyword("None", value.start_pos, prefix=" ")
        node.children[1].parent = node
        return node

    @classmethod
    def examples(cls):
        return (Example("def f():\n    return x + 1\n", "def f():\n    return None\n"),)


OWN_OPERATORS = {op.__name__: op for op in (DropArgument, SwapArguments, ConstantReturn)}


def operators() -> dict[str, type[Operator]]:
    provider = OperatorProvider()
    return {**{name: provider[name] for name in COSMIC_RAY_OPERATORS}, **OWN_OPERATORS}


# ------------------------------------------------------------------------ mutants
@dataclass(frozen=True)
class Mutant:
    id: str             # <file>:<line>:<operator>:<n>
    file: str           # relative to the submission
    line: int
    operator: str
    function: str       # enclosing top-level def/class ("" at module level)
    source: str         # the whole mutated file
    diff: str
    same_code: bool     # compiles to the same bytecode as the original: equivalent

    def write_into(self, submission: Path) -> None:
        (submission / self.file).write_text(self.source)


class _Apply(Visitor):
    """Applies the `occurrence`-th mutation of `operator` (cosmic-ray's visitor logic),
    remembering where it was."""

    def __init__(self, operator: Operator, occurrence: int) -> None:
        self.operator, self.occurrence, self.count = operator, occurrence, 0
        self.applied_at: tuple[int, int] | None = None
        self.node = None

    def visit(self, node):
        for index, (start, _end) in enumerate(self.operator.mutation_positions(node)):
            if self.count == self.occurrence:
                self.applied_at = start
                self.node = node
                node = self.operator.mutate(node, index)
            self.count += 1
        return node


def _skipped(node) -> bool:
    """Code whose mutation says nothing about the grader: annotations, docstrings' owners,
    the `if __name__ == "__main__":` block."""
    while node is not None:
        if node.type == "tfpdef" or node.type == "annassign":
            return True
        if node.type == "if_stmt" and "__main__" in node.children[1].get_code():
            return True
        parent = node.parent
        if parent is not None and parent.type == "funcdef" and node is parent.children[-2]:
            return True  # the return annotation of `def f() -> X:` sits before the colon
        node = parent
    return False


def _enclosing(root, pos: tuple[int, int]) -> str:
    for child in root.children:
        if child.type in ("funcdef", "classdef", "async_stmt", "decorated") \
                and child.start_pos <= pos <= child.end_pos:
            named = child
            while named.type in ("decorated", "async_stmt"):
                named = named.children[-1]
            return named.name.value
    return ""


def _code_digest(code: types.CodeType) -> tuple:
    consts = tuple(_code_digest(c) if isinstance(c, types.CodeType) else repr(c)
                   for c in code.co_consts)
    return code.co_code, consts, code.co_names


def _compiled(source: str, name: str) -> tuple | None:
    try:
        return _code_digest(compile(source, name, "exec"))
    except (SyntaxError, ValueError):
        return None


def mutants_of(source: str, file: str) -> Iterator[Mutant]:
    """Every mutant of one Python file (`file`: its path relative to the submission)."""
    original = _compiled(source, file)
    root = get_ast(source)
    per_line: dict[tuple[int, str], int] = {}
    for name, op_class in operators().items():
        occurrence = 0
        while True:
            apply = _Apply(op_class(), occurrence)
            mutated_tree = apply.walk(get_ast(source))
            if apply.applied_at is None:
                break
            occurrence += 1
            if _skipped(apply.node):
                continue
            mutated = mutated_tree.get_code()
            if mutated == source:
                continue
            line = apply.applied_at[0]
            n = per_line.get((line, name), 0)
            per_line[(line, name)] = n + 1
            diff = "".join(difflib.unified_diff(
                source.splitlines(keepends=True), mutated.splitlines(keepends=True),
                fromfile=f"a/{file}", tofile=f"b/{file}", n=1))
            yield Mutant(id=f"{file}:{line}:{name}:{n}", file=file, line=line, operator=name,
                         function=_enclosing(root, apply.applied_at), source=mutated,
                         diff=diff, same_code=original is not None
                         and _compiled(mutated, file) == original)


def student_python_files(solution: Path, files: tuple[str, ...]) -> list[str]:
    """The student-facing Python files of a lab (lab.toml `files`), as they exist in the
    solution."""
    return [f for f in files if f.endswith(".py") and (solution / f).is_file()]
