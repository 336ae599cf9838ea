"""Kubernetes manifests: load (plain YAML or kustomize), validate for a version, read.

    manifests = load_manifests(Path("k8s"))              # ArtefactError: the tool's text
    problems = validate_manifests(manifests, "1.30")     # [] when all valid
    for deployment in of_kind(manifests, "Deployment"):
        for container in containers(deployment):
            probe = container.get("readinessProbe")

Validation is `kubernetes-validate`'s schemas (strict: an unknown field such as a
misspelt `readinesProbe` is an error). The tool only warns when it has no schema for a
kind/apiVersion; here that is an error, worded as "removed in Kubernetes X" when an older
schema set still has it (e.g. autoscaling/v2beta2 HorizontalPodAutoscaler in 1.26+).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

from labgrade.deploy.tools import ArtefactError, kubectl_binary, run

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob",
                  "Pod")


@dataclass(frozen=True)
class Manifest:
    """One Kubernetes object and where it came from (a file, or the kustomize build)."""

    source: str
    body: dict

    @property
    def kind(self) -> str:
        return str(self.body.get("kind", ""))

    @property
    def api_version(self) -> str:
        return str(self.body.get("apiVersion", ""))

    @property
    def name(self) -> str:
        return str((self.body.get("metadata") or {}).get("name", ""))

    @property
    def labels(self) -> dict:
        return dict((self.body.get("metadata") or {}).get("labels") or {})

    def __str__(self) -> str:
        return f"{self.kind}/{self.name} ({self.source})"


def _yaml_error(source: str, exc: yaml.YAMLError) -> ArtefactError:
    mark = getattr(exc, "problem_mark", None)
    where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark is not None else source
    return ArtefactError(f"{where}: YAML does not parse: {exc}")


def parse_yaml_stream(text: str, source: str) -> list[Manifest]:
    """Every non-empty document of a YAML stream; `List` objects are flattened."""
    try:
        documents = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise _yaml_error(source, exc) from None
    manifests: list[Manifest] = []
    for index, doc in enumerate(documents, start=1):
        where = f"{source} (document {index})"
        if not isinstance(doc, dict):
            raise ArtefactError(f"{where}: a Kubernetes object must be a mapping, got "
                                f"{type(doc).__name__}")
        for field in ("apiVersion", "kind"):
            if not doc.get(field):
                raise ArtefactError(f"{where}: object has no `{field}`")
        if doc["kind"].endswith("List") and isinstance(doc.get("items"), list):
            manifests += [Manifest(where, item) for item in doc["items"]
                          if isinstance(item, dict)]
        else:
            manifests.append(Manifest(where, doc))
    return manifests


def kustomization_file(folder: Path) -> Path | None:
    return next((folder / n for n in KUSTOMIZATION_FILES if (folder / n).is_file()), None)


def kustomize_build(folder: Path, timeout: float = 60.0) -> str:
    """`kubectl kustomize FOLDER` (no cluster needed); ArtefactError with kubectl's text."""
    proc = run([kubectl_binary(), "kustomize", folder], timeout=timeout)
    if proc.returncode != 0:
        raise ArtefactError(f"kubectl kustomize {folder.name}/ failed: "
                            f"{(proc.stderr or proc.stdout).strip()}")
    return proc.stdout


def load_manifests(folder: Path) -> list[Manifest]:
    """The objects a folder deploys: its kustomize build when it has a kustomization,
    else every *.yaml / *.yml file under it (sorted). ToolMissing when kubectl is needed
    and absent; ArtefactError (the parser's or kubectl's text) on bad input."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ArtefactError(f"{folder.name}/ is missing: expected a folder of manifests")
    if kustomization_file(folder) is not None:
        return parse_yaml_stream(kustomize_build(folder), f"kustomize build of {folder.name}/")
    files = sorted(p for p in folder.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
    if not files:
        raise ArtefactError(f"{folder.name}/ holds no .yaml/.yml manifests")
    manifests: list[Manifest] = []
    for path in files:
        manifests += parse_yaml_stream(path.read_text(), str(path.relative_to(folder.parent)))
    if not manifests:
        raise ArtefactError(f"{folder.name}/ defines no objects (its files hold only "
                            "comments or empty documents)")
    return manifests


# -- validation ----------------------------------------------------------------------------

def supported_versions() -> list[str]:
    from kubernetes_validate.utils import all_versions

    return all_versions()


@functools.cache
def _schema_exists(kind: str, api_version: str, version: str) -> bool:
    from kubernetes_validate import utils

    try:
        utils.validate({"apiVersion": api_version, "kind": kind, "metadata": {"name": "x"}},
                       version)
    except utils.SchemaNotFoundError:
        return False
    except utils.ValidationError:
        return True
    return True


def _missing_schema_message(manifest: Manifest, version: str) -> str:
    older = [v for v in supported_versions()
             if tuple(map(int, v.split(".")[:2])) < tuple(map(int, version.split(".")[:2]))]
    last = next((v for v in reversed(older)
                 if _schema_exists(manifest.kind, manifest.api_version, v)), None)
    if last is not None:
        return (f"{manifest}: apiVersion {manifest.api_version} of {manifest.kind} is removed "
                f"in Kubernetes {version} (last served by {last}): use the current apiVersion")
    return (f"{manifest}: Kubernetes {version} has no kind {manifest.kind!r} in apiVersion "
            f"{manifest.api_version!r} (unknown kind, or a typo)")


def validate_manifest(manifest: Manifest, version: str, *, strict: bool = True) -> str | None:
    """None when valid for `version`, else one line (the schema's own words, field path)."""
    from kubernetes_validate import utils

    try:
        utils.validate(manifest.body, version, strict)
    except utils.ValidationError as exc:
        path = ".".join(str(p) for p in exc.path) or "(top level)"
        return f"{manifest}: {path}: {exc.message} (schema of Kubernetes {exc.version})"
    except utils.SchemaNotFoundError:
        return _missing_schema_message(manifest, version)
    except utils.VersionNotSupportedError as exc:
        raise ValueError(f"kubernetes-validate has no schemas for Kubernetes {exc.version}; "
                         f"it knows {', '.join(supported_versions())}") from None
    return None


def validate_manifests(manifests: Iterable[Manifest], version: str, *,
                       strict: bool = True) -> list[str]:
    """Every object's problem for Kubernetes `version` ("1.30"); [] when all are valid."""
    return [p for m in manifests if (p := validate_manifest(m, version, strict=strict))]


# -- reading objects -----------------------------------------------------------------------

def of_kind(manifests: Iterable[Manifest], kind: str) -> list[Manifest]:
    return [m for m in manifests if m.kind == kind]


def pod_spec(workload: Manifest) -> dict:
    """The pod spec of any workload kind ({} when it has none)."""
    body = workload.body
    if workload.kind == "Pod":
        return dict(body.get("spec") or {})
    spec = body.get("spec") or {}
    if workload.kind == "CronJob":
        spec = ((spec.get("jobTemplate") or {}).get("spec") or {})
    return dict(((spec.get("template") or {}).get("spec")) or {})


def pod_labels(workload: Manifest) -> dict:
    spec = workload.body.get("spec") or {}
    if workload.kind == "Pod":
        return workload.labels
    if workload.kind == "CronJob":
        spec = ((spec.get("jobTemplate") or {}).get("spec") or {})
    return dict((((spec.get("template") or {}).get("metadata")) or {}).get("labels") or {})


def containers(workload: Manifest, *, init: bool = False) -> list[dict]:
    spec = pod_spec(workload)
    return list(spec.get("initContainers") or []) if init else list(spec.get("containers") or [])


def workloads(manifests: Iterable[Manifest]) -> list[Manifest]:
    return [m for m in manifests if m.kind in WORKLOAD_KINDS]


def effective_security_context(workload: Manifest, container: dict) -> dict:
    """Pod-level securityContext overlaid with the container's own (what the kubelet uses
    for the fields both levels share)."""
    pod = dict(pod_spec(workload).get("securityContext") or {})
    shared = {k: v for k, v in pod.items() if k in (
        "runAsNonRoot", "runAsUser", "runAsGroup", "seccompProfile", "seLinuxOptions",
        "appArmorProfile", "windowsOptions")}
    return {**shared, **(container.get("securityContext") or {})}


def http_probe(container: dict, probe: str) -> tuple[str, object] | None:
    """(path, port) of an httpGet probe ("readinessProbe", ...), None when not httpGet."""
    http = ((container.get(probe) or {}).get("httpGet")) or None
    if http is None:
        return None
    return str(http.get("path", "/")), http.get("port")


def probe_budget_s(probe: dict) -> float:
    """How long a probe tolerates failure before it gives up: failureThreshold x period
    (+ initialDelaySeconds), with Kubernetes' defaults (3 x 10 s)."""
    return (float(probe.get("initialDelaySeconds", 0))
            + float(probe.get("failureThreshold", 3)) * float(probe.get("periodSeconds", 10)))


def container_ports(container: dict) -> dict[str, int]:
    """name -> containerPort (unnamed ports under their number as text)."""
    return {str(p.get("name", p.get("containerPort"))): int(p["containerPort"])
            for p in container.get("ports") or [] if "containerPort" in p}


def resolve_port(container: dict, port: object) -> int | None:
    if isinstance(port, int):
        return port
    return container_ports(container).get(str(port))


def selector_matches(selector: dict, labels: dict) -> bool:
    """A matchLabels-style selector (or a Service's plain map) against labels."""
    match = selector.get("matchLabels", selector) if "matchLabels" in selector else selector
    exprs = selector.get("matchExpressions") or []
    if not match and not exprs:
        return False
    if any(labels.get(k) != v for k, v in (match or {}).items()):
        return False
    for expr in exprs:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def selected_workloads(manifests: Iterable[Manifest], selector: dict) -> list[Manifest]:
    """Workloads whose pod labels a selector (Service spec.selector, PDB spec.selector) picks."""
    return [w for w in workloads(manifests) if selector_matches(selector, pod_labels(w))]


def scale_target(hpa_or_pdb: Manifest, manifests: Iterable[Manifest]) -> Manifest | None:
    """The object an HPA's scaleTargetRef names (kind and name), None when absent."""
    ref = (hpa_or_pdb.body.get("spec") or {}).get("scaleTargetRef") or {}
    return next((m for m in manifests
                 if m.kind == ref.get("kind") and m.name == ref.get("name")), None)


def secret_refs(container: dict) -> Iterator[tuple[str, str | None]]:
    """(secret name, key or None for envFrom) for every Secret the container's env reads."""
    for env in container.get("env") or []:
        ref = ((env.get("valueFrom") or {}).get("secretKeyRef")) or None
        if ref:
            yield str(ref.get("name")), ref.get("key")
    for source in container.get("envFrom") or []:
        ref = source.get("secretRef")
        if ref:
            yield str(ref.get("name")), None


def quantity(value: object) -> float:
    """A Kubernetes quantity ("500m", "2", "4Gi", "1e3") as a number (cpu cores, bytes)."""
    text = str(value).strip()
    suffixes = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
                "n": 1e-9, "u": 1e-6, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12,
                "P": 1e15, "E": 1e18}
    for suffix in sorted(suffixes, key=len, reverse=True):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * suffixes[suffix]
    return float(text)
