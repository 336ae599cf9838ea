"""Dockerfiles: `hadolint` findings and the instruction structure from `dockerfile-parse`.

    dockerfile = read_dockerfile(Path("Dockerfile"))   # ArtefactError when it does not parse
    dockerfile.findings                                # hadolint's, as Finding records
    dockerfile.instructions("USER")                    # [Instruction(line, value), ...]
    dockerfile.final_stage()                           # instructions after the last FROM

hadolint's DL1000 ("does not parse") becomes an ArtefactError with its line and column,
so a broken file is one clear message instead of an empty structure.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path

from labgrade.deploy.tools import ArtefactError, hadolint_binary, run, safe_tool_env

PARSE_ERROR_CODE = "DL1000"


@dataclass(frozen=True)
class Finding:
    code: str
    level: str          # error | warning | info | style
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.code} ({self.level}) {self.message}"


@dataclass(frozen=True)
class Instruction:
    keyword: str        # upper case: FROM, RUN, USER, ...
    value: str          # the text after the keyword (continuations joined)
    line: int           # 1-based first line

    @property
    def exec_form(self) -> list[str] | None:
        """The JSON array of an exec-form CMD/ENTRYPOINT/RUN/HEALTHCHECK CMD, else None."""
        text = self.value.strip()
        if self.keyword == "HEALTHCHECK":
            head, _, rest = text.partition("CMD")
            text = rest.strip() if head.strip() == "" or head.strip().startswith("--") else ""
        try:
            parsed = json.loads(text)
        except ValueError:
            return None
        return parsed if isinstance(parsed, list) and all(isinstance(a, str) for a in parsed) \
            else None


@dataclass
class Dockerfile:
    path: Path
    instructions_all: list[Instruction]
    findings: list[Finding] = field(default_factory=list)

    def instructions(self, keyword: str, *, final_stage: bool = False) -> list[Instruction]:
        pool = self.final_stage() if final_stage else self.instructions_all
        return [i for i in pool if i.keyword == keyword.upper()]

    def final_stage(self) -> list[Instruction]:
        starts = [n for n, i in enumerate(self.instructions_all) if i.keyword == "FROM"]
        return self.instructions_all[starts[-1]:] if starts else list(self.instructions_all)

    def findings_at_least(self, level: str) -> list[Finding]:
        order = ["style", "info", "warning", "error"]
        return [f for f in self.findings if order.index(f.level) >= order.index(level)]


def hadolint(path: Path, *, ignore: tuple[str, ...] = ()) -> list[Finding]:
    """Every hadolint finding (its exit status is 1 on any finding, so it is not used)."""
    argv = [hadolint_binary(), "--no-color", "-f", "json"]
    for code in ignore:
        argv += ["--ignore", code]
    proc = run([*argv, path.name], cwd=path.parent, env=safe_tool_env())
    try:
        raw = json.loads(proc.stdout or "[]")
    except ValueError:
        raise RuntimeError(f"hadolint printed no JSON (exit {proc.returncode}): "
                           f"{(proc.stderr or proc.stdout)[:500]}") from None
    return [Finding(str(r.get("code")), str(r.get("level")), int(r.get("line", 0)),
                    int(r.get("column", 0)), str(r.get("message"))) for r in raw]


def read_dockerfile(path: Path, *, ignore: tuple[str, ...] = ()) -> Dockerfile:
    """Parse and lint; ArtefactError with hadolint's line:column when it does not parse."""
    from dockerfile_parse import DockerfileParser

    path = Path(path)
    if not path.is_file():
        raise ArtefactError(f"{path.name} is missing")
    findings = hadolint(path, ignore=ignore)
    broken = [f for f in findings if f.code == PARSE_ERROR_CODE]
    if broken:
        f = broken[0]
        raise ArtefactError(f"{path.name}:{f.line}:{f.column}: hadolint cannot parse it: "
                            f"{f.message}")
    parser = DockerfileParser(fileobj=io.BytesIO(path.read_bytes()))
    instructions = [Instruction(str(s["instruction"]).upper(), str(s["value"]),
                                int(s["startline"]) + 1) for s in parser.structure]
    if not any(i.keyword == "FROM" for i in instructions):
        raise ArtefactError(f"{path.name}: no FROM instruction: a Dockerfile starts from a "
                            "base image")
    return Dockerfile(path, instructions, findings)
