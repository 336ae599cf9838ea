"""labgrade.deploy against the real tools: each validator accepts a good artefact and
rejects a bad one with the tool's own words (file, line, column where the tool gives them)."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from labgrade.deploy import ArtefactError, ToolMissing, tool_versions
from labgrade.deploy import kubernetes as k8s
from labgrade.deploy.compose import load_compose
from labgrade.deploy.dockerfile import read_dockerfile
from labgrade.deploy.image import daemon_available

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, labels: {app: web}}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      securityContext: {runAsNonRoot: true}
      containers:
        - name: web
          image: nginx:1.27
          ports: [{name: http, containerPort: 8080}]
          readinessProbe: {httpGet: {path: /ready, port: http}, periodSeconds: 5}
          startupProbe: {httpGet: {path: /health, port: http}, failureThreshold: 30}
          resources: {requests: {cpu: 500m, memory: 1Gi, nvidia.com/gpu: 1}}
          securityContext: {allowPrivilegeEscalation: false}
          env:
            - name: KEY
              valueFrom: {secretKeyRef: {name: keys, key: api}}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: http}]
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def test_plain_manifests_validate_and_read(tmp_path):
    write(tmp_path / "k8s", "app.yaml", DEPLOYMENT)
    manifests = k8s.load_manifests(tmp_path / "k8s")
    assert [m.kind for m in manifests] == ["Deployment", "Service"]
    assert k8s.validate_manifests(manifests, "1.30") == []
    deployment = k8s.of_kind(manifests, "Deployment")[0]
    (web,) = k8s.containers(deployment)
    assert k8s.http_probe(web, "readinessProbe") == ("/ready", "http")
    assert k8s.resolve_port(web, "http") == 8080
    assert k8s.probe_budget_s(web["startupProbe"]) == 300
    assert k8s.effective_security_context(deployment, web) == {
        "runAsNonRoot": True, "allowPrivilegeEscalation": False}
    assert list(k8s.secret_refs(web)) == [("keys", "api")]
    service = k8s.of_kind(manifests, "Service")[0]
    assert k8s.selected_workloads(manifests, service.body["spec"]["selector"]) == [deployment]
    assert k8s.quantity("500m") == 0.5 and k8s.quantity("1Gi") == 2**30


def test_kustomization_is_built_by_kubectl(tmp_path):
    if shutil.which("kubectl") is None:
        with pytest.raises(ToolMissing, match="kubectl"):
            k8s.kustomize_build(tmp_path)
        return
    write(tmp_path / "k8s", "app.yaml", DEPLOYMENT)
    write(tmp_path / "k8s", "kustomization.yaml",
          "resources: [app.yaml]\nnamespace: prod\nnamePrefix: blue-\n")
    manifests = k8s.load_manifests(tmp_path / "k8s")
    assert {m.name for m in manifests} == {"blue-web"}
    assert all(m.body["metadata"]["namespace"] == "prod" for m in manifests)
    write(tmp_path / "k8s", "kustomization.yaml", "resources: [missing.yaml]\n")
    with pytest.raises(ArtefactError, match="kubectl kustomize k8s/ failed: .*missing.yaml"):
        k8s.load_manifests(tmp_path / "k8s")


def test_schema_errors_removed_api_versions_and_unknown_kinds_fail(tmp_path):
    bad = DEPLOYMENT.replace("readinessProbe", "readinesProbe").replace(
        "kind: Service", "kind: Servce")
    write(tmp_path / "k8s", "app.yaml", bad)
    write(tmp_path / "k8s", "hpa.yml", """\
        apiVersion: autoscaling/v2beta2
        kind: HorizontalPodAutoscaler
        metadata: {name: web}
        spec:
          scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
          maxReplicas: 3
        """)
    problems = k8s.validate_manifests(k8s.load_manifests(tmp_path / "k8s"), "1.30")
    assert len(problems) == 3, problems
    assert "'readinesProbe' was unexpected" in problems[0]
    assert "Servce" in problems[1] and "unknown kind" in problems[1]
    assert "autoscaling/v2beta2" in problems[2] and "removed in Kubernetes 1.30" in problems[2]
    with pytest.raises(ValueError, match="no schemas for Kubernetes 9.9"):
        k8s.validate_manifests(k8s.load_manifests(tmp_path / "k8s"), "9.9")


def test_unparseable_yaml_names_file_line_and_column(tmp_path):
    write(tmp_path / "k8s", "svc.yaml", "apiVersion: v1\nkind: Service\n  metadata: x\n")
    with pytest.raises(ArtefactError, match=r"k8s/svc.yaml:3:\d+: YAML does not parse"):
        k8s.load_manifests(tmp_path / "k8s")
    write(tmp_path / "k8s", "svc.yaml", "apiVersion: v1\nmetadata: {name: x}\n")
    with pytest.raises(ArtefactError, match="has no `kind`"):
        k8s.load_manifests(tmp_path / "k8s")


def test_compose_normalized_and_rejected_with_both_tools_text(tmp_path):
    good = write(tmp_path, "compose.yaml", """\
        services:
          api:
            image: example/api:1.0
            depends_on: [db]
          db:
            image: postgres:16
        """)
    project = load_compose(good)
    assert project["services"]["api"]["depends_on"]["db"]["condition"] == "service_started"
    bad = write(tmp_path, "bad.yaml", "services:\n  api:\n    image: x\n    helthcheck: {}\n")
    with pytest.raises(ArtefactError) as caught:
        load_compose(bad)
    text = str(caught.value)
    assert "$.services.api" in text and "helthcheck" in text  # the schema's line
    assert "docker compose config:" in text                  # and the loader's
    broken = write(tmp_path, "broken.yaml", "services:\n  api:\n   image: x\n  - b\n")
    with pytest.raises(ArtefactError, match="line"):
        load_compose(broken)


def test_dockerfile_findings_structure_and_parse_error(tmp_path):
    path = write(tmp_path, "Dockerfile", """\
        FROM python:latest AS build
        RUN pip install vllm
        FROM python:3.11-slim
        USER 1000
        HEALTHCHECK CMD ["curl", "-f", "http://localhost:8000/health"]
        CMD python -m server
        """)
    dockerfile = read_dockerfile(path)
    codes = {f.code for f in dockerfile.findings}
    assert {"DL3007", "DL3013", "DL3025"} <= codes
    assert [i.value for i in dockerfile.instructions("USER", final_stage=True)] == ["1000"]
    assert dockerfile.instructions("CMD")[0].exec_form is None
    assert dockerfile.instructions("HEALTHCHECK")[0].exec_form[0] == "curl"
    assert dockerfile.instructions("CMD")[0].line == 6
    write(tmp_path, "Dockerfile", "FROM python:3.11\nRUNN pip install x\n")
    with pytest.raises(ArtefactError, match=r"Dockerfile:2:\d+: hadolint cannot parse it"):
        read_dockerfile(path)


def test_tool_versions_and_daemon_probe():
    versions = tool_versions()
    assert versions["hadolint"].startswith("Haskell Dockerfile Linter")
    assert versions["docker-compose"].startswith("Docker Compose version v2")
    assert versions["kubernetes-validate"][0].isdigit()
    available, why = daemon_available()
    assert isinstance(available, bool) and why  # either a version or the reason it is absent
