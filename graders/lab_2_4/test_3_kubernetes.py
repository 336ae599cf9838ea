"""k8s/: valid objects for the published Kubernetes version (kubectl kustomize first when
there is a kustomization), then the policy the README asks for, read from those objects."""

from __future__ import annotations

import pytest

from labgrade import Fail
from labgrade.deploy import kubernetes as k8s

from .artefacts import KEY_ENV


def the_deployment(manifests: list[k8s.Manifest]) -> k8s.Manifest:
    found = k8s.of_kind(manifests, "Deployment")
    if len(found) != 1:
        raise Fail(f"k8s/ must hold exactly one Deployment (found {len(found)}: "
                   f"{', '.join(str(m) for m in found) or 'none'})")
    return found[0]


def gateway_container(deployment: k8s.Manifest) -> dict:
    for container in k8s.containers(deployment):
        if any(e.get("name") == KEY_ENV for e in container.get("env") or []) or \
                "gateway" in str(container.get("name", "")):
            return container
    raise Fail(f"{deployment}: no gateway container (named `gateway`, or reading {KEY_ENV})")


def engine_containers(deployment: k8s.Manifest) -> list[dict]:
    gateway = gateway_container(deployment)
    return [c for c in k8s.containers(deployment) if c is not gateway]


@pytest.mark.points(6)
def test_k8s_manifests_valid(manifests, settings):
    version = settings["kubernetes_version"]
    problems = k8s.validate_manifests(manifests.require(), version)
    if problems:
        raise Fail(f"{len(problems)} object(s) are not valid Kubernetes {version} "
                   "(kubernetes-validate, strict):\n" + "\n".join(problems[:10]))


@pytest.mark.points(6)
def test_k8s_probes(manifests, settings):
    deployment = the_deployment(manifests.require())
    gateway = gateway_container(deployment)
    for probe, path in (("readinessProbe", "/ready"), ("livenessProbe", "/health")):
        target = k8s.http_probe(gateway, probe)
        if target is None or target[0] != path:
            raise Fail(f"{deployment}: the gateway's {probe} must be an httpGet on {path} "
                       f"(found {target and target[0]!r})")
        if k8s.resolve_port(gateway, target[1]) is None:
            raise Fail(f"{deployment}: the gateway's {probe} port {target[1]!r} is not one "
                       "of its containerPorts")
    minimum = float(settings["startup_budget_min_s"])
    for container in engine_containers(deployment) or [gateway]:
        startup = container.get("startupProbe")
        if not startup:
            raise Fail(f"{deployment}: container {container.get('name')} has no startupProbe:"
                       " the liveness probe then kills the engine while it loads the model")
        budget = k8s.probe_budget_s(startup)
        if budget < minimum:
            raise Fail(f"{deployment}: container {container.get('name')}'s startupProbe "
                       f"allows {budget:.0f} s (failureThreshold x periodSeconds), below the "
                       f"{minimum:.0f} s a model load may take")


@pytest.mark.points(5)
def test_k8s_resources_and_gpu(manifests):
    deployment = the_deployment(manifests.require())
    for container in k8s.containers(deployment):
        resources = container.get("resources") or {}
        requests, limits = resources.get("requests") or {}, resources.get("limits") or {}
        missing = [f"requests.{r}" for r in ("cpu", "memory") if r not in requests] + \
            (["limits.memory"] if "memory" not in limits else [])
        if missing:
            raise Fail(f"{deployment}: container {container.get('name')} lacks "
                       f"{', '.join(missing)}")
    gpus = [k8s.quantity((c.get("resources") or {}).get("limits", {}).get("nvidia.com/gpu", 0))
            for c in engine_containers(deployment)]
    if not gpus or min(gpus) < 1:
        raise Fail(f"{deployment}: the engine container must set limits `nvidia.com/gpu: 1` "
                   "(extended resources are scheduled from limits)")


@pytest.mark.points(5)
def test_k8s_service_hpa_pdb(manifests):
    objects = manifests.require()
    deployment = the_deployment(objects)
    services = [s for s in k8s.of_kind(objects, "Service")
                if deployment in k8s.selected_workloads(objects, s.body.get("spec", {})
                                                        .get("selector") or {})]
    if not services:
        raise Fail(f"no Service selects {deployment}'s pod labels")
    gateway = gateway_container(deployment)
    for port in services[0].body["spec"].get("ports") or []:
        target = port.get("targetPort", port.get("port"))
        if k8s.resolve_port(gateway, target) is None:
            raise Fail(f"{services[0]}: targetPort {target!r} is not a port of the gateway "
                       "container (traffic must enter through the gateway)")
    hpas = [h for h in k8s.of_kind(objects, "HorizontalPodAutoscaler")
            if k8s.scale_target(h, objects) is deployment]
    if not hpas:
        raise Fail(f"no HorizontalPodAutoscaler scales {deployment}")
    hpa = hpas[0]
    if hpa.api_version != "autoscaling/v2":
        raise Fail(f"{hpa}: use apiVersion autoscaling/v2 (found {hpa.api_version})")
    spec = hpa.body.get("spec") or {}
    low, high = int(spec.get("minReplicas", 1)), int(spec.get("maxReplicas", 0))
    if high <= low:
        raise Fail(f"{hpa}: maxReplicas {high} must exceed minReplicas {low}")
    pdbs = [p for p in k8s.of_kind(objects, "PodDisruptionBudget")
            if deployment in k8s.selected_workloads(objects, (p.body.get("spec") or {})
                                                    .get("selector") or {})]
    if not pdbs:
        raise Fail(f"no PodDisruptionBudget selects {deployment}'s pods")
    pdb = pdbs[0].body.get("spec") or {}
    if "minAvailable" in pdb and isinstance(pdb["minAvailable"], int) and \
            pdb["minAvailable"] >= low:
        raise Fail(f"{pdbs[0]}: minAvailable {pdb['minAvailable']} >= minReplicas {low}: "
                   "no node could ever be drained")


@pytest.mark.points(5)
def test_k8s_secret_and_security_context(manifests):
    objects = manifests.require()
    deployment = the_deployment(objects)
    gateway = gateway_container(deployment)
    literal = [e for e in gateway.get("env") or [] if e.get("name") == KEY_ENV and "value" in e]
    if literal:
        raise Fail(f"{deployment}: {KEY_ENV} is a literal value in the manifest: read it "
                   "with valueFrom.secretKeyRef from a Secret")
    if not any(True for _ in k8s.secret_refs(gateway)):
        raise Fail(f"{deployment}: the gateway reads no Secret for {KEY_ENV} "
                   "(env[].valueFrom.secretKeyRef or envFrom[].secretRef)")
    for container in k8s.containers(deployment) + k8s.containers(deployment, init=True):
        context = k8s.effective_security_context(deployment, container)
        if context.get("runAsNonRoot") is not True:
            raise Fail(f"{deployment}: container {container.get('name')} may run as root: "
                       "set securityContext.runAsNonRoot: true (pod or container)")
        if context.get("allowPrivilegeEscalation") is not False or context.get("privileged"):
            raise Fail(f"{deployment}: container {container.get('name')} allows privilege "
                       "escalation: set securityContext.allowPrivilegeEscalation: false")


@pytest.mark.points(3)
def test_k8s_termination_grace_covers_drain(manifests, settings):
    deployment = the_deployment(manifests.require())
    grace = k8s.pod_spec(deployment).get("terminationGracePeriodSeconds", 30)
    deadline = settings["drain_deadline_s"]
    if grace < deadline:
        raise Fail(f"{deployment}: terminationGracePeriodSeconds is {grace} s, below the "
                   f"gateway's {deadline} s drain deadline: the kubelet kills streams still "
                   "in flight")
