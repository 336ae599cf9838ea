"""lab_2_4's Dockerfile readers (pure Python over dockerfile-parse's structure): build
targets follow their FROM chain, ENV/ARG assignments in both syntaxes, COPY sources."""

from __future__ import annotations

import textwrap

from conftest import ROOT
from graders.lab_2_4.test_1_dockerfile import _assignments, _copy_sources, stages, target
from labgrade.deploy.dockerfile import Instruction, read_dockerfile


def test_targets_follow_their_from_chain():
    dockerfile = read_dockerfile(ROOT / "solutions" / "lab_2_4" / "Dockerfile")
    assert list(stages(dockerfile)) == ["base", "server", "gateway"]
    gateway = target(dockerfile, "gateway")
    assert gateway[0].value.startswith("python:")          # base's FROM comes first
    assert [i.keyword for i in gateway].count("FROM") == 2
    assert not any("vllm" in i.value for i in gateway)      # nothing of the server stage


def test_assignments_and_copy_sources(tmp_path):
    assert _assignments(Instruction("ENV", 'A=1 B="x y" \\\n C=', 1)) == [
        ("A", "1"), ("B", "x y"), ("C", "")]
    assert _assignments(Instruction("ENV", "API_KEY sk-123", 1)) == [("API_KEY", "sk-123")]
    assert _assignments(Instruction("ARG", "MODEL_PATH", 1)) == [("MODEL_PATH", "")]
    assert _copy_sources(Instruction("COPY", "--chown=app:app requirements.txt ./", 1)) == [
        "requirements.txt"]
    assert _copy_sources(Instruction("COPY", '["gateway.py", "/app/"]', 1)) == ["gateway.py"]
    path = tmp_path / "Dockerfile"
    path.write_text(textwrap.dedent("""\
        FROM python:3.11.9-slim AS gateway
        COPY . .
        """))
    assert _copy_sources(read_dockerfile(path).instructions("COPY")[0]) == ["."]
