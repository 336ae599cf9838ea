"""compose.yaml through Compose v2's loader and the compose-spec schema, then what the
normalized project says: healthy dependency, GPU reservation, restarts, keys, model cache."""

from __future__ import annotations

import pytest

from labgrade import Fail

from .artefacts import KEY_ENV

RESTARTS = ("always", "unless-stopped", "on-failure")


def service(project: dict, name: str) -> dict:
    services = project.get("services") or {}
    if name not in services:
        raise Fail(f"compose.yaml has no service `{name}` (it has: {', '.join(services)})")
    return services[name]


@pytest.mark.points(4)
def test_compose_is_valid(compose):
    project = compose.require()
    service(project, "server")
    service(project, "gateway")


@pytest.mark.points(4)
def test_compose_gateway_waits_for_healthy_server(compose):
    project = compose.require()
    server, gateway = service(project, "server"), service(project, "gateway")
    condition = ((gateway.get("depends_on") or {}).get("server") or {}).get("condition")
    if condition != "service_healthy":
        raise Fail(f"gateway.depends_on.server.condition is {condition!r}: use "
                   "`condition: service_healthy`, or the gateway starts before the engine "
                   "has loaded the model")
    test = (server.get("healthcheck") or {}).get("test")
    if not test or (server.get("healthcheck") or {}).get("disable"):
        raise Fail("the server service has no healthcheck, so `service_healthy` can never "
                   "be reached: probe vLLM's /health")


@pytest.mark.points(4)
def test_compose_reserves_a_gpu(compose):
    server = service(compose.require(), "server")
    devices = (((server.get("deploy") or {}).get("resources") or {})
               .get("reservations") or {}).get("devices") or []
    if not any(d.get("driver") == "nvidia" and "gpu" in (d.get("capabilities") or [])
               and (d.get("count") or d.get("device_ids")) for d in devices):
        raise Fail("server.deploy.resources.reservations.devices reserves no NVIDIA GPU: "
                   "add `- driver: nvidia`, `count: 1`, `capabilities: [gpu]` "
                   f"(found: {devices})")


@pytest.mark.points(2)
def test_compose_restart_policy(compose):
    project = compose.require()
    for name in ("server", "gateway"):
        svc = service(project, name)
        policy = svc.get("restart") or ((svc.get("deploy") or {}).get("restart_policy") or
                                        {}).get("condition")
        if not policy or not any(policy.startswith(r.split("-")[0]) for r in RESTARTS) \
                or policy == "no":
            raise Fail(f"service {name} has no restart policy ({policy!r}): a crashed "
                       f"container stays down; use `restart: unless-stopped`")


@pytest.mark.points(4)
def test_compose_key_from_env_file_or_secret(compose, compose_as_written):
    written = compose_as_written.require()
    gateway_written = ((written.get("services") or {}).get("gateway") or {})
    environment = gateway_written.get("environment") or {}
    pairs = (dict(e.split("=", 1) if "=" in e else (e, None) for e in environment)
             if isinstance(environment, list) else dict(environment))
    inline = pairs.get(KEY_ENV)
    if inline is not None and not str(inline).startswith("${"):
        raise Fail(f"compose.yaml sets {KEY_ENV} inline in gateway.environment: the key is "
                   "then in version control. Read it from an env_file (.env, kept out of "
                   "git) or a Compose secret")
    if not gateway_written.get("env_file") and not gateway_written.get("secrets"):
        raise Fail(f"the gateway gets {KEY_ENV} from neither an env_file nor a secret")
    gateway = service(compose.require(), "gateway")
    if KEY_ENV not in (gateway.get("environment") or {}) and not gateway.get("secrets"):
        raise Fail(f"after loading the env_file(s), the gateway's environment has no "
                   f"{KEY_ENV} (.env.example must name it)")


@pytest.mark.points(2)
def test_compose_model_cache_volume(compose):
    project = compose.require()
    mounts = service(project, "server").get("volumes") or []
    named = [m for m in mounts if m.get("type") == "volume" and m.get("source")]
    if not named:
        raise Fail("the server mounts no named volume: the model cache (weights) is then "
                   "downloaded again by every new container. Mount one, e.g. "
                   "`model-cache:/models`, and declare it under top-level `volumes:`")
