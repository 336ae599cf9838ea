"""Items: the student's Kubernetes manifests for tritonserver (deploy/): validated with
labgrade.deploy (kubernetes-validate's schemas for the Kubernetes version lab.toml names,
kustomize when there is a kustomization), then checked against what the README asks."""

from __future__ import annotations

import pytest

from labgrade import Fail
from labgrade.deploy import ArtefactError, ToolMissing
from labgrade.deploy.kubernetes import (load_manifests, of_kind, selected_workloads,
                                        validate_manifests)
from labgrade.kit import Once
from labgrade.scoring import Ungradable

from .manifests import (autoscaling_problems, cluster_objects, find_triton, metrics_problems,
                        probe_problems, repository_problems, resource_problems)

FOLDER = "deploy"


@pytest.fixture(scope="package")
def manifests(submission) -> Once:
    def produce():
        folder = submission.require(FOLDER)
        try:
            return load_manifests(folder)
        except ArtefactError as exc:
            raise Fail(f"{FOLDER}/ could not be read: {exc}") from None
        except ToolMissing as exc:
            raise Ungradable(str(exc)) from None
    return Once(produce)


def _triton(manifests):
    triton = find_triton(manifests)
    if triton is None:
        raise Fail(f"no Deployment in {FOLDER}/ runs a tritonserver image "
                   "(nvcr.io/nvidia/tritonserver:<release>-py3)")
    return triton


def _fail(what: str, problems: list[str]) -> None:
    if problems:
        raise Fail(f"{what}:\n" + "\n".join(f"- {p}" for p in problems))


@pytest.mark.points(4)
def test_manifests_validate(manifests, settings, score):
    """Every object is valid for the published Kubernetes version (strict schemas: a typo
    in a field name fails, an apiVersion removed by then fails); a Deployment runs
    tritonserver, a Service selects it, an HPA exists."""
    objects = manifests.get()
    version = settings["kubernetes_version"]
    problems = validate_manifests(cluster_objects(objects), version)
    score.measure(objects=[str(m) for m in objects], kubernetes_version=version)
    _fail(f"{FOLDER}/ is not valid for Kubernetes {version}", problems)
    triton = _triton(objects)
    missing = []
    if not any(triton.deployment in selected_workloads(
            objects, (service.body.get("spec") or {}).get("selector") or {})
            for service in of_kind(objects, "Service")):
        missing.append(f"no Service selects the pods of Deployment/{triton.deployment.name}")
    if not of_kind(objects, "HorizontalPodAutoscaler"):
        missing.append("no HorizontalPodAutoscaler")
    _fail(f"{FOLDER}/ is valid, but", missing)


@pytest.mark.points(6)
def test_manifest_probes_volume_metrics(manifests):
    """The model repository (--model-repository) is on a mounted volume; readiness checks
    /v2/health/ready and liveness /v2/health/live on the HTTP port; the metrics port is
    declared and scraped (pod annotations, a ServiceMonitor or a PodMonitor)."""
    objects = manifests.get()
    triton = _triton(objects)
    _fail(f"Deployment/{triton.deployment.name}, container {triton.container.get('name')!r}",
          repository_problems(triton) + probe_problems(triton)
          + metrics_problems(triton, objects))


@pytest.mark.points(5)
def test_manifest_resources_and_autoscaling(manifests):
    """The server container requests and limits cpu and memory and a GPU; an
    autoscaling/v2 HPA scales the Deployment on a Triton signal (an nv_* metric)."""
    objects = manifests.get()
    triton = _triton(objects)
    _fail(f"Deployment/{triton.deployment.name}",
          resource_problems(triton) + autoscaling_problems(triton, objects))
