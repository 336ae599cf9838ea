"""promtool and amtool, run as the real tools: the verdict and the tool's own text.

    result = check_rules(Path("rules.yml"))
    if not result.ok:
        raise Fail(f"promtool check rules rejected rules.yml:\n{result.output}")

A missing tool raises `labgrade.runtime.prometheus.MonitoringToolMissing` (with the install
command): graders report the item as ungradable.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from labgrade.runtime.prometheus import tool_path


@dataclass(frozen=True)
class ToolResult:
    ok: bool
    output: str  # stdout and stderr together, paths shown relative to the file's folder
    command: str

    def __bool__(self) -> bool:
        return self.ok


def _run(tool: str, args: Sequence[str], cwd: Path, timeout: float) -> ToolResult:
    argv = [tool_path(tool), *args]
    try:
        proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return ToolResult(False, f"{tool} did not finish within {timeout:.0f} s",
                          " ".join([tool, *args]))
    output = "\n".join(part.strip() for part in (proc.stdout, proc.stderr) if part.strip())
    return ToolResult(proc.returncode == 0, output, " ".join([tool, *args]))


def check_rules(path: Path, timeout: float = 60.0) -> ToolResult:
    """`promtool check rules FILE` (YAML and PromQL errors come with line and column)."""
    path = Path(path)
    return _run("promtool", ["check", "rules", path.name], path.parent, timeout)


def test_rules(test_file: Path, timeout: float = 120.0) -> ToolResult:
    """`promtool test rules FILE`: unit tests for recording and alerting rules on
    synthetic series. `rule_files` inside FILE are resolved relative to its folder."""
    test_file = Path(test_file)
    return _run("promtool", ["test", "rules", test_file.name], test_file.parent, timeout)


test_rules.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


def check_alertmanager_config(path: Path, timeout: float = 60.0) -> ToolResult:
    """`amtool check-config FILE`."""
    path = Path(path)
    return _run("amtool", ["check-config", path.name], path.parent, timeout)
