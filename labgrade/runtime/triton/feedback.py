"""Turning the server's words into feedback: the log lines about one model, and the reason
a model did not load, written for a student."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

_GLOG = re.compile(r"^([IWEF])\d{4} [\d:.]+\s+\d+\s+[\w.\-]+:\d+\]\s?(.*)$")
_PROTOBUF = re.compile(r"^\[libprotobuf (?:ERROR|WARNING|FATAL)[^\]]*\]\s*(.*)$")
_PARSE_POS = re.compile(r"Error parsing text-format inference\.ModelConfig:\s*(\d+):(\d+):\s*(.*)")
_VERSION_FAIL = re.compile(
    r"version (\d+) is at UNAVAILABLE state: (.*?)"
    r"(?=;\s*version \d+ is at UNAVAILABLE state:|;?\s*$)", re.S)


def _decode_log_message(message: str) -> str:
    message = message.strip()
    if len(message) >= 2 and message[0] == '"' and message[-1] == '"':
        try:
            return json.loads(message)
        except ValueError:
            return message[1:-1].replace("\\n", "\n").replace('\\"', '"')
    return message


def relevant_log_lines(log_text: str, model: str) -> list[str]:
    """Warning/error lines of a Triton log that concern `model`, decoded.

    A config.pbtxt syntax error is logged by protobuf on its own line, without the model's
    name, right before Triton's "Poll failed for model directory '<model>'" line: such lines
    are kept when the next Triton line names the model.
    """
    # 'model' (quoted), model_0_0 (an instance), model:1 (a version)
    name = re.escape(model)
    names_it = re.compile(rf"'{name}'|(?<![\w.\-]){name}(?:_\d+_\d+|:\d+)")
    kept: list[str] = []
    pending: list[str] = []
    for raw in log_text.splitlines():
        proto = _PROTOBUF.match(raw)
        if proto:
            pending.append(proto.group(1).strip())
            continue
        glog = _GLOG.match(raw)
        if not glog:
            continue
        severity, message = glog.group(1), _decode_log_message(glog.group(2))
        if names_it.search(message):
            kept.extend(pending)
            if severity in "WEF":
                kept.append(message)
        pending = []
    return kept


def explain_load_failure(model: str, server_message: str, log_lines: Sequence[str] = (),
                         repository: Path | str | Sequence[Path | str] | None = None) -> str:
    """The reason a model did not load, written for a student (no headline)."""
    parts: list[str] = []
    versions = list(_VERSION_FAIL.finditer(server_message))
    for match in versions:
        reason = match.group(2).strip().rstrip(";").strip()
        reason = re.sub(r"^Internal: ", "", reason)
        parts.append(f"version {match.group(1)}: {reason}" if len(versions) > 1 else reason)
    if not parts:
        headline = server_message.strip()
        headline = re.sub(rf"^failed to load {re.escape(repr(model))},\s*", "", headline)
        if headline:
            parts.append(headline)
        for line in log_lines:
            pos = _PARSE_POS.search(line)
            if pos:
                parts.append(f"{model}/config.pbtxt line {pos.group(1)}, column {pos.group(2)}: "
                             f"{pos.group(3).strip()}")
            elif line not in server_message:
                parts.append(re.sub(r"^E\d+ ", "", line))
        if "failed to poll" in server_message and len(parts) == 1:
            parts.append(f"(is there a folder '{model}' with a valid config.pbtxt in the "
                         "model repository?)")
    text = "\n".join(parts) or "the server gave no reason; see its log"
    text = text.replace("\n\nAt:\n", "\nAt:\n")
    for root in _repository_prefixes(repository):
        text = text.replace(root, "")
    return text.strip()


def _repository_prefixes(repository: Path | str | Sequence[Path | str] | None) -> list[str]:
    if repository is None:
        return []
    roots = [repository] if isinstance(repository, (str, Path)) else list(repository)
    forms: set[str] = set()
    for root in roots:
        forms.add(str(Path(root)).rstrip("/") + "/")
        try:
            forms.add(str(Path(root).resolve()).rstrip("/") + "/")
        except OSError:
            pass
    return sorted(forms, key=len, reverse=True)
