"""The student's Kubernetes manifests for tritonserver, read through labgrade.deploy (the
same loader and validators as lab_2_4): which object is Triton, what its command line
says (model repository, ports), and each requirement of the README as a list of problems.

Prometheus Operator objects (ServiceMonitor, PodMonitor) are custom resources: Kubernetes'
own schemas do not know them, so they are read here, not validated against the cluster
schema.
"""

from __future__ import annotations

from dataclasses import dataclass

from labgrade.deploy.kubernetes import (Manifest, container_ports, containers, http_probe,
                                        of_kind, pod_labels, pod_spec, quantity, resolve_port,
                                        scale_target, selector_matches)

MONITORING_KINDS = ("ServiceMonitor", "PodMonitor")
DEFAULT_PORTS = {"http": 8000, "grpc": 8001, "metrics": 8002}
READY, LIVE = "/v2/health/ready", "/v2/health/live"


def cluster_objects(manifests: list[Manifest]) -> list[Manifest]:
    """Everything Kubernetes' own schemas validate (not the operator's custom resources)."""
    return [m for m in manifests if m.kind not in MONITORING_KINDS]


@dataclass(frozen=True)
class Triton:
    """The Deployment running tritonserver and its server container."""

    deployment: Manifest
    container: dict

    def flag(self, name: str) -> str | None:
        """The value of `--name=value` or `--name value` on the command line."""
        argv = [str(a) for a in (self.container.get("command") or [])
                + (self.container.get("args") or [])]
        for i, arg in enumerate(argv):
            if arg.startswith(f"--{name}="):
                return arg.split("=", 1)[1]
            if arg == f"--{name}" and i + 1 < len(argv):
                return argv[i + 1]
        return None

    def port(self, kind: str) -> int:
        value = self.flag(f"{kind}-port")
        return int(value) if value and value.isdigit() else DEFAULT_PORTS[kind]


def find_triton(manifests: list[Manifest]) -> Triton | None:
    for deployment in of_kind(manifests, "Deployment"):
        for container in containers(deployment):
            if "tritonserver" in str(container.get("image", "")):
                return Triton(deployment, container)
    return None


def repository_problems(triton: Triton) -> list[str]:
    path = triton.flag("model-repository")
    if not path:
        return ["the tritonserver command line has no --model-repository"]
    mounts = [m for m in triton.container.get("volumeMounts") or []
              if path.rstrip("/") == str(m.get("mountPath", "")).rstrip("/")
              or path.startswith(str(m.get("mountPath", "")).rstrip("/") + "/")]
    if not mounts:
        return [f"--model-repository={path} is not on a mounted volume (no volumeMount "
                "whose mountPath holds it)"]
    volumes = {v.get("name"): v for v in pod_spec(triton.deployment).get("volumes") or []}
    volume = volumes.get(mounts[0].get("name"))
    if volume is None:
        return [f"the volumeMount {mounts[0].get('name')!r} names no volume of the pod"]
    if "emptyDir" in volume:
        fills = any(m.get("name") == volume.get("name")
                    for c in containers(triton.deployment, init=True)
                    for m in c.get("volumeMounts") or [])
        if not fills:
            return [f"the model repository volume {volume.get('name')!r} is an emptyDir that "
                    "nothing fills: the server would start with no models"]
    return []


def probe_problems(triton: Triton) -> list[str]:
    problems = []
    http_port = triton.port("http")
    for probe, path in (("readinessProbe", READY), ("livenessProbe", LIVE)):
        found = http_probe(triton.container, probe)
        if found is None:
            problems.append(f"no {probe} with httpGet (expected path {path})")
            continue
        got_path, port = found
        if got_path != path:
            problems.append(f"{probe} checks {got_path}; expected {path}"
                            + (" (live says the process runs; ready says its models serve)"
                               if path in (READY, LIVE) else ""))
        if resolve_port(triton.container, port) != http_port:
            problems.append(f"{probe} port {port!r} is not the HTTP port {http_port}")
    return problems


def metrics_problems(triton: Triton, manifests: list[Manifest]) -> list[str]:
    port = triton.port("metrics")
    names = [n for n, p in container_ports(triton.container).items() if p == port]
    if not names:
        return [f"the metrics port {port} is not declared among the container's ports"]
    template = (triton.deployment.body.get("spec") or {}).get("template") or {}
    notes = (template.get("metadata") or {}).get("annotations") or {}
    if str(notes.get("prometheus.io/scrape")) == "true":
        if str(notes.get("prometheus.io/port")) != str(port):
            return [f"prometheus.io/port is {notes.get('prometheus.io/port')!r}; the metrics "
                    f"port is {port}"]
        if notes.get("prometheus.io/path", "/metrics") != "/metrics":
            return [f"prometheus.io/path is {notes['prometheus.io/path']!r}; Triton serves "
                    "/metrics"]
        return []
    labels = pod_labels(triton.deployment)
    for monitor in of_kind(manifests, "PodMonitor"):
        spec = monitor.body.get("spec") or {}
        if selector_matches(spec.get("selector") or {}, labels) and any(
                e.get("port") in names for e in spec.get("podMetricsEndpoints") or []):
            return []
    for monitor in of_kind(manifests, "ServiceMonitor"):
        spec = monitor.body.get("spec") or {}
        for service in of_kind(manifests, "Service"):
            if not (selector_matches(spec.get("selector") or {}, service.labels)
                    and selector_matches((service.body.get("spec") or {}).get("selector") or {},
                                         labels)):
                continue
            metric_ports = {str(p.get("name")) for p in (service.body["spec"].get("ports") or [])
                            if resolve_port(triton.container, p.get("targetPort", p.get("port")))
                            == port}
            if any(str(e.get("port")) in metric_ports for e in spec.get("endpoints") or []):
                return []
    return [f"nothing scrapes the metrics port {port}: annotate the pod template "
            "(prometheus.io/scrape: \"true\", prometheus.io/port) or add a ServiceMonitor "
            "(through a Service port) or a PodMonitor for it"]


def resource_problems(triton: Triton) -> list[str]:
    resources = triton.container.get("resources") or {}
    requests, limits = resources.get("requests") or {}, resources.get("limits") or {}
    problems = []
    for name in ("cpu", "memory"):
        if name not in requests or name not in limits:
            problems.append(f"{name}: set both requests and limits")
        elif quantity(requests[name]) > quantity(limits[name]):
            problems.append(f"{name}: request {requests[name]} exceeds limit {limits[name]}")
    gpu = limits.get("nvidia.com/gpu")
    if gpu is None or quantity(gpu) < 1:
        problems.append("limits has no nvidia.com/gpu (at least 1): the scheduler would place "
                        "the server on a node without a GPU")
    elif "nvidia.com/gpu" in requests and quantity(requests["nvidia.com/gpu"]) != quantity(gpu):
        problems.append("nvidia.com/gpu: requests must equal limits (extended resources "
                        "cannot be overcommitted)")
    return problems


def autoscaling_problems(triton: Triton, manifests: list[Manifest]) -> list[str]:
    hpas = [h for h in of_kind(manifests, "HorizontalPodAutoscaler")
            if scale_target(h, manifests) is triton.deployment]
    if not hpas:
        return [f"no HorizontalPodAutoscaler scales Deployment/{triton.deployment.name}"]
    problems = []
    for hpa in hpas:
        spec = hpa.body.get("spec") or {}
        low, high = int(spec.get("minReplicas", 1)), int(spec.get("maxReplicas", 0))
        if not 1 <= low < high:
            problems.append(f"{hpa}: replicas {low}..{high} leave nothing to scale")
        signals = [_metric_name(m) for m in spec.get("metrics") or []]
        if not any(name.startswith("nv_") for name in signals if name):
            kinds = [m.get("type") for m in spec.get("metrics") or []]
            problems.append(f"{hpa} scales on {kinds or 'nothing'} {signals or ''}: scale on a "
                            "Triton signal — a Pods, Object or External metric named after an "
                            "nv_* series (e.g. nv_inference_pending_request_count); CPU says "
                            "little about a GPU server's load")
    return problems


def _metric_name(metric: dict) -> str:
    kind = str(metric.get("type", ""))
    body = metric.get(kind[:1].lower() + kind[1:]) or {}
    return str(((body.get("metric") or {}).get("name")) or "")
