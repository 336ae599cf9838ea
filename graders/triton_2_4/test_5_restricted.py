"""Task 6: restricted endpoints. The student's launch flags restrict the model-repository
API (index, load, unload) to a key, over HTTP (header `<name>: <key>`) and gRPC (header
`triton-grpc-protocol-<name>: <key>`). Without the key, or with a wrong one: refused (HTTP
403); with it: served. Inference stays open to everyone."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import numpy as np
import pytest

from labgrade import Fail

from .load import fp32_input

API = "model-repository"


def _http_index(server, headers: dict) -> tuple[int, str]:
    request = urllib.request.Request(server.http_url + "/v2/repository/index", data=b"{}",
                                     method="POST", headers=headers)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=10) as resp:
            return resp.status, resp.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def _grpc_index(server, headers: dict | None) -> str | None:
    """None when served, else the error text."""
    from tritonclient.utils import InferenceServerException

    client = server.grpc_client()
    try:
        client.get_model_repository_index(headers=headers)
        return None
    except InferenceServerException as exc:
        return str(exc)
    finally:
        client.close()


@pytest.mark.points(10)
def test_restricted_endpoints(triton, server_flags, score):
    flags = server_flags.require()
    server = triton.require_model("mlp")
    problems = []
    for flag, restriction in (("--http-restricted-api", flags.http),
                              ("--grpc-restricted-protocol", flags.grpc)):
        if restriction is None or API not in restriction.apis:
            problems.append(f"server_flags.txt has no {flag}={API}:<header>=<key>")
    if problems:
        raise Fail("; ".join(problems) + ": the model-repository API (load, unload, index) "
                   "must need a key over both protocols")
    key, header = flags.http.key, flags.http.header
    cases = {"no key": {}, "a wrong key": {header: key + "x"}, "the key": {header: key}}
    http = {case: _http_index(server, h) for case, h in cases.items()}
    gkey, gname = flags.grpc.key, f"triton-grpc-protocol-{flags.grpc.header}"
    grpc = {"no key": _grpc_index(server, None),
            "a wrong key": _grpc_index(server, {gname: gkey + "x"}),
            "the key": _grpc_index(server, {gname: gkey})}
    score.measure(http_status={c: s for c, (s, _) in http.items()},
                  grpc_refused={c: e is not None for c, e in grpc.items()})
    for case in ("no key", "a wrong key"):
        status, body = http[case]
        if status != 403:
            raise Fail(f"POST /v2/repository/index over HTTP with {case} answered {status}, "
                       f"expected 403: {body[:200]}")
        if grpc[case] is None:
            raise Fail(f"gRPC RepositoryIndex with {case} was served; it must be refused")
    if http["the key"][0] != 200:
        raise Fail(f"POST /v2/repository/index with header {header}: {key} answered "
                   f"{http['the key'][0]}: {http['the key'][1][:200]}")
    if grpc["the key"] is not None:
        raise Fail(f"gRPC RepositoryIndex with header {gname} was refused: {grpc['the key']}")
    names = {entry.get("name") for entry in json.loads(http["the key"][1])}
    if "mlp" not in names:
        raise Fail(f"the repository index with the key lists {sorted(names)}, without mlp")
    client = server.grpc_client()
    try:
        x = np.zeros((1, 16), dtype=np.float32)
        client.infer("mlp", [fp32_input("X", x)])
    except Exception as exc:  # noqa: BLE001 - the student's flags refused inference
        raise Fail(f"inference without a key was refused ({exc}): restrict only the "
                   "model-repository API, clients must still infer") from None
    finally:
        client.close()
