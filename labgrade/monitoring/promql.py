"""PromQL as Grafana sends it: variables substituted, then parsed offline.

Grafana replaces its variables before a query reaches Prometheus, so a dashboard's raw
`expr` (`rate(x[$__rate_interval])`) is not PromQL yet. `substitute` does what Grafana does
with fixed values: the built-ins `$__rate_interval`, `$__interval`, `$__range` (and their
`_ms`/`_s` forms), the dashboard's own template variables, in the three spellings Grafana
accepts (`$var`, `${var}`, `${var:fmt}`, `[[var]]`). `parse` runs promql-parser (the Rust
parser Prometheus's grammar is ported to) and returns the metric names the query reads.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import promql_parser

# Grafana's built-ins with the values a grading uses: short windows, because the series a
# grader scrapes are seconds to minutes old (a scrape interval of 1 s).
BUILTINS: dict[str, str] = {
    "__rate_interval": "30s",
    "__interval": "5s",
    "__range": "5m",
}

_VARIABLE = re.compile(r"\$\{(\w+)(?::[^}]*)?\}|\[\[(\w+)(?::[^\]]*)?\]\]|\$(\w+)")


class QueryError(ValueError):
    """A query that does not parse (the parser's own message)."""


def builtin_values(overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """Every Grafana built-in the graders know, with `_ms` and `_s` forms derived."""
    values = {**BUILTINS, **(overrides or {})}
    for name in ("__interval", "__range"):
        seconds = promql_parser.parse_duration(values[name]).total_seconds()
        values[f"{name}_ms"] = str(int(seconds * 1000))
        values[f"{name}_s"] = str(int(seconds))
    return values


def substitute(expr: str, variables: Mapping[str, str] | None = None) -> str:
    """`expr` with Grafana variables replaced: built-ins first, then `variables` (a
    dashboard's template variables). An unknown variable stays as written, so the parser
    names it."""
    values = {**builtin_values(), **(variables or {})}

    def replace(match: re.Match) -> str:
        name = match.group(1) or match.group(2) or match.group(3)
        return values.get(name, match.group(0))

    return _VARIABLE.sub(replace, expr)


@dataclass(frozen=True)
class ParsedQuery:
    source: str       # as written
    promql: str       # after substitution
    metrics: tuple[str, ...]  # metric names read (vector and matrix selectors), in order


def parse(expr: str, variables: Mapping[str, str] | None = None) -> ParsedQuery:
    """Substitute and parse; QueryError with the parser's message if it is not PromQL."""
    promql = substitute(expr, variables)
    try:
        tree = promql_parser.parse(promql)
    except (ValueError, TypeError) as exc:
        raise QueryError(str(exc)) from None
    names: list[str] = []

    def visit(node: object) -> None:
        if isinstance(node, promql_parser.VectorSelector) and node.name \
                and node.name not in names:
            names.append(node.name)

    promql_parser.walk(tree, visit)
    return ParsedQuery(expr, promql, tuple(names))
