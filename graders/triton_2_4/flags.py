"""The student's tritonserver launch flags (server_flags.txt), read as data.

Only the flags this lab is about may be set: the grader owns the ports, the repository,
model control and logging. Restricted-API flags are parsed so the grader knows which APIs
need which header, and can send the key itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

FILE = "server_flags.txt"
ALLOWED = ("--cache-config", "--http-restricted-api", "--grpc-restricted-protocol",
           "--rate-limit", "--rate-limit-resource")


@dataclass(frozen=True)
class Restriction:
    apis: frozenset[str]
    header: str
    key: str


@dataclass
class ServerFlags:
    args: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    http: Restriction | None = None
    grpc: Restriction | None = None

    @property
    def api_headers(self) -> dict[str, str]:
        """What the grader's own HTTP API calls send (its loads, the repository index)."""
        return {self.http.header: self.http.key} if self.http else {}

    def grpc_headers(self) -> dict[str, str]:
        return {f"triton-grpc-protocol-{self.grpc.header}": self.grpc.key} if self.grpc else {}

    def has(self, name: str) -> bool:
        return any(a == name or a.startswith(name + "=") for a in self.args)


def parse_restriction(flag: str, value: str) -> Restriction:
    """`<api>[,<api>...]:<header>=<key>` as tritonserver takes it."""
    apis, sep, rest = value.partition(":")
    header, eq, key = rest.partition("=")
    if not (sep and eq and apis and header and key):
        raise ValueError(f"{flag}={value}: expected {flag}=<api>[,<api>]:<header>=<key>, e.g. "
                         f"{flag}=model-repository:admin-key=<your key>")
    return Restriction(frozenset(a.strip() for a in apis.split(",")), header.strip(), key.strip())


def parse_flags(text: str) -> ServerFlags:
    flags = ServerFlags()
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, eq, value = line.partition("=")
        if name not in ALLOWED or not eq or not value:
            if name not in ALLOWED:
                why = (f"{name!r} is not a flag this lab lets you set (allowed: "
                       f"{', '.join(ALLOWED)}; the grader sets ports, repository and model "
                       "control itself)")
            else:
                why = f"write it as {name}=<value>"
            flags.problems.append(f"{FILE} line {number}: {why}")
            continue
        if name in ("--http-restricted-api", "--grpc-restricted-protocol"):
            try:
                restriction = parse_restriction(name, value)
            except ValueError as exc:
                flags.problems.append(f"{FILE} line {number}: {exc}")
                continue
            if name == "--http-restricted-api":
                flags.http = restriction
            else:
                flags.grpc = restriction
        flags.args.append(line)
    return flags


def read_flags(submission_dir: Path) -> ServerFlags:
    path = submission_dir / FILE
    if not path.is_file():
        return ServerFlags(problems=[f"{FILE} is missing: start from the starter's copy"])
    return parse_flags(path.read_text(errors="replace"))
