"""labgrade.runtime.triton against the real tritonserver bundled in nvidia-pytriton.

The server tests need `.venv-triton` (created by `make setup`, or
scripts/setup-triton-env.sh) and skip with that hint when it is absent. One module-scoped
server serves most of them; the shutdown test starts its own. The pure parts (error
explanations, the Docker request builder) are tested without a server; the metrics
page is read by labgrade.runtime.prom (tests/test_prom.py).
"""

from __future__ import annotations

import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from labgrade.runtime.process import ServiceError
from labgrade.runtime.prom import MetricMissing
from labgrade.runtime.triton import (
    ModelLoadError,
    TritonError,
    TritonServer,
    explain_load_failure,
    model_config_json,
    parse_model_config,
    process_group_pids,
    relevant_log_lines,
    shm_segments,
    triton_available,
)
from labgrade.runtime.triton.container import (
    DEFAULT_IMAGE,
    HostPorts,
    container_request,
    gpu_device_requests,
)

TRITON_OK, TRITON_WHY = triton_available()
needs_triton = pytest.mark.skipif(
    not TRITON_OK, reason=f"embedded Triton not installed ({TRITON_WHY})")
server_test = [needs_triton, pytest.mark.slow]

# --------------------------------------------------------------------------- the repository
ADD_CONFIG = """
name: "add"
backend: "python"
max_batch_size: 8
input [
  { name: "INPUT0" data_type: TYPE_FP32 dims: [ 4 ] },
  { name: "INPUT1" data_type: TYPE_FP32 dims: [ 4 ] }
]
output [ { name: "OUTPUT0" data_type: TYPE_FP32 dims: [ 4 ] } ]
instance_group [ { kind: KIND_CPU count: 1 } ]
"""

ADD_MODEL = """
import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            a = pb_utils.get_input_tensor_by_name(request, "INPUT0").as_numpy()
            b = pb_utils.get_input_tensor_by_name(request, "INPUT1").as_numpy()
            out = pb_utils.Tensor("OUTPUT0", (a + b).astype(np.float32))
            responses.append(pb_utils.InferenceResponse(output_tensors=[out]))
        return responses
"""

# identity plus facts about the stub's interpreter (which numpy, which environment)
PROBE_CONFIG = """
name: "probe"
backend: "python"
max_batch_size: 0
input [ { name: "X" data_type: TYPE_FP32 dims: [ -1 ] } ]
output [
  { name: "Y" data_type: TYPE_FP32 dims: [ -1 ] },
  { name: "ENV" data_type: TYPE_STRING dims: [ 2 ] }
]
"""

PROBE_MODEL = """
import sys
import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        env = np.array([np.__version__.encode(), sys.prefix.encode()], dtype=object)
        return [
            pb_utils.InferenceResponse(output_tensors=[
                pb_utils.Tensor("Y", pb_utils.get_input_tensor_by_name(r, "X").as_numpy()),
                pb_utils.Tensor("ENV", env),
            ])
            for r in requests
        ]
"""

RAISES_MODEL = """
class TritonPythonModel:
    def initialize(self, args):
        weights = None
        if weights is None:
            raise RuntimeError("TODO: load the MLP weights from model.pt")

    def execute(self, requests):
        return []
"""

BROKEN_CONFIG = """
name: "broken_config"
backend: "python"
input [ { name: "INPUT0" data_type: TYPE_FP32 dims: [ 4 } ]
"""


def write_model(repo: Path, name: str, config: str, model_py: str) -> None:
    (repo / name / "1").mkdir(parents=True)
    (repo / name / "config.pbtxt").write_text(textwrap.dedent(config).lstrip())
    (repo / name / "1" / "model.py").write_text(textwrap.dedent(model_py).lstrip())


def make_repository(repo: Path) -> Path:
    write_model(repo, "add", ADD_CONFIG, ADD_MODEL)
    write_model(repo, "probe", PROBE_CONFIG, PROBE_MODEL)
    write_model(repo, "raises_in_init", ADD_CONFIG.replace('"add"', '"raises_in_init"'),
                RAISES_MODEL)
    write_model(repo, "broken_config", BROKEN_CONFIG, ADD_MODEL)
    write_model(repo, "override_me", ADD_CONFIG.replace('"add"', '"override_me"'), ADD_MODEL)
    return repo


def eventually(condition, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.fixture(scope="module")
def repository(tmp_path_factory) -> Path:
    return make_repository(tmp_path_factory.mktemp("triton_repo"))


@pytest.fixture(scope="module")
def server(repository, tmp_path_factory):
    if not TRITON_OK:
        pytest.skip(f"embedded Triton not installed ({TRITON_WHY})")
    with TritonServer(repository, log_dir=tmp_path_factory.mktemp("triton_logs"),
                      startup_timeout=60) as srv:
        srv.load_all(["add", "probe"])
        yield srv


def _add_inputs(module, a: np.ndarray, b: np.ndarray):
    x = module.InferInput("INPUT0", list(a.shape), "FP32")
    x.set_data_from_numpy(a)
    y = module.InferInput("INPUT1", list(b.shape), "FP32")
    y.set_data_from_numpy(b)
    return [x, y]


# --------------------------------------------------------------------------- server tests
@pytest.mark.usefixtures("server")
class TestEmbeddedServer:
    pytestmark = server_test

    def test_server_is_live_on_loopback_ports(self, server):
        assert server.live()
        assert server.startup_seconds is not None and server.startup_seconds < 30
        assert server.http_url.startswith("http://127.0.0.1:")
        host, port = server.grpc_url.split(":")
        assert host == "127.0.0.1" and int(port) == server.grpc_port
        assert server.metrics_url.endswith("/metrics")
        assert len({server.http_port, server.grpc_port, server.metrics_port}) == 3
        assert server.server_metadata()["version"].startswith("2.")
        assert server.pid in server.pids()

    def test_model_answers_over_http(self, server):
        import tritonclient.http as httpclient

        a = np.arange(8, dtype=np.float32).reshape(2, 4)
        b = np.ones((2, 4), dtype=np.float32)
        client = server.http_client()
        try:
            result = client.infer("add", _add_inputs(httpclient, a, b))
        finally:
            client.close()
        np.testing.assert_array_equal(result.as_numpy("OUTPUT0"), a + b)

    def test_model_answers_over_grpc(self, server):
        import tritonclient.grpc as grpcclient

        a = np.full((3, 4), 2.5, dtype=np.float32)
        b = np.arange(12, dtype=np.float32).reshape(3, 4)
        client = server.grpc_client()
        try:
            result = client.infer("add", _add_inputs(grpcclient, a, b))
        finally:
            client.close()
        np.testing.assert_array_equal(result.as_numpy("OUTPUT0"), a + b)

    def test_stub_runs_in_the_triton_env_with_numpy_1(self, server):
        import tritonclient.http as httpclient

        x = httpclient.InferInput("X", [3], "FP32")
        x.set_data_from_numpy(np.array([1.0, -2.0, 3.5], dtype=np.float32))
        client = server.http_client()
        try:
            result = client.infer("probe", [x])
        finally:
            client.close()
        np.testing.assert_array_equal(result.as_numpy("Y"), [1.0, -2.0, 3.5])
        numpy_version, prefix = (v.decode() for v in result.as_numpy("ENV"))
        assert numpy_version.startswith("1."), numpy_version
        assert Path(prefix).resolve() == server.python_env.resolve()
        # the stubs embed the interpreter's own libpython (LIBDIR first on LD_LIBRARY_PATH),
        # not a system libpython3.X of the same minor version
        libdir = str(server.dist.python_libdir)
        stubs = [pid for pid in server.pids()  # below the supervisor: tritonserver, stubs
                 if b"triton_python_backend_stub" in Path(f"/proc/{pid}/cmdline").read_bytes()]
        assert stubs
        for stub in stubs:
            maps = Path(f"/proc/{stub}/maps").read_text()
            libpythons = {line.split()[-1] for line in maps.splitlines() if "libpython3" in line}
            assert libpythons and all(p.startswith(libdir) for p in libpythons), libpythons

    def test_raising_initialize_gives_the_students_error(self, server, repository):
        with pytest.raises(ModelLoadError) as info:
            server.load("raises_in_init")
        error = info.value
        text = str(error)
        assert error.model == "raises_in_init" and error.status == 400
        assert "RuntimeError: TODO: load the MLP weights from model.pt" in text
        assert "raises_in_init/1/model.py(5): initialize" in text
        assert str(repository) not in text  # paths are repository-relative for students
        assert "TODO: load the MLP weights" in error.server_message
        assert not server.model_ready("raises_in_init")
        assert server.live()  # a failed model does not take the server down

    def test_broken_config_gives_line_and_column(self, server):
        with pytest.raises(ModelLoadError) as info:
            server.load("broken_config")
        text = str(info.value)
        assert "broken_config/config.pbtxt line 3, column" in text, text
        assert 'Expected ","' in text, text
        assert any("Error parsing text-format" in line for line in info.value.log_lines)

    def test_unknown_model_is_a_load_error(self, server):
        with pytest.raises(ModelLoadError, match="model not found in any model repository"):
            server.load("no_such_model")

    def test_config_override_in_pbtxt(self, server):
        import tritonclient.http as httpclient

        config = ADD_CONFIG.replace('"add"', '"override_me"').replace("max_batch_size: 8",
                                                                      "max_batch_size: 2")
        server.load("override_me", config=config)
        assert server.model_config("override_me")["max_batch_size"] == 2
        a = np.ones((2, 4), dtype=np.float32)
        client = server.http_client()
        try:
            out = client.infer("override_me", _add_inputs(httpclient, a, a)).as_numpy("OUTPUT0")
        finally:
            client.close()
        np.testing.assert_array_equal(out, 2 * a)
        server.unload("override_me")
        assert not server.model_ready("override_me")

    def test_bad_config_override_is_reported_before_the_request(self, server):
        with pytest.raises(ModelLoadError, match="does not parse"):
            server.load("add", config='name: "add" input [ {')

    def test_repository_index_shows_states(self, server):
        index = {entry["name"]: entry for entry in server.repository_index()}
        assert {"add", "probe", "raises_in_init", "broken_config", "override_me"} <= set(index)
        assert index["add"]["state"] == "READY"
        ready = {entry["name"] for entry in server.repository_index(ready_only=True)}
        assert {"add", "probe"} <= ready and "raises_in_init" not in ready
        assert server.model_ready("add") and server.model_ready("add", version="1")
        assert server.model_config("add")["max_batch_size"] == 8

    def test_metrics_and_statistics_count_inferences(self, server):
        import tritonclient.http as httpclient

        before = server.metrics().value("nv_inference_count", model="add", default=0.0)
        stats_before = server.statistics("add")["model_stats"][0]["inference_count"]
        client = server.http_client()
        try:
            for _ in range(3):
                a = np.ones((2, 4), dtype=np.float32)
                client.infer("add", _add_inputs(httpclient, a, a))
        finally:
            client.close()
        metrics = server.metrics()
        assert metrics.value("nv_inference_count", model="add") == before + 6  # batch of 2, x3
        assert metrics.value("nv_inference_exec_count", model="add", version="1") >= 3
        assert metrics.value("nv_inference_request_success", model="add") >= 3
        assert metrics.value("nv_cpu_utilization") >= 0
        with pytest.raises(MetricMissing, match="present"):
            metrics.value("nv_inference_count", model="nope")
        stats = server.statistics("add")["model_stats"][0]
        assert stats["name"] == "add"
        assert stats["inference_count"] == stats_before + 6
        assert stats["inference_stats"]["success"]["count"] >= 3
        assert {s["name"] for s in server.statistics()["model_stats"]} >= {"add", "probe"}

    def test_unload_stops_the_stub_and_frees_its_shm(self, server):
        stubs_before = set(server.pids()) - {server.pid}
        shm_before = set(server.shm_segments())
        assert shm_before and all(p.name.startswith(server.shm_prefix) for p in shm_before)
        server.unload("probe")
        assert not server.model_ready("probe")
        assert eventually(lambda: len(set(server.pids()) - {server.pid}) == len(stubs_before) - 1)
        assert eventually(lambda: len(server.shm_segments()) == len(shm_before) - 1)
        assert server.model_ready("add")

    def test_log_tail_is_the_servers_log(self, server):
        assert "Started HTTPService at 127.0.0.1" in server.log_text()
        assert server.log_tail(5).count("\n") <= 4


@pytest.mark.slow
@needs_triton
def test_stop_leaves_no_process_and_no_shm(tmp_path):
    repo = tmp_path / "repo"
    write_model(repo, "add", ADD_CONFIG, ADD_MODEL)
    srv = TritonServer(repo, log_dir=tmp_path / "logs")
    with srv:
        srv.load("add")
        pgid, prefix = srv.pid, srv.shm_prefix
        assert len(srv.pids()) >= 2  # server and one stub
        assert shm_segments(prefix)
        started = time.monotonic()
    stop_seconds = time.monotonic() - started
    assert process_group_pids(pgid) == []
    assert shm_segments(prefix) == []
    assert stop_seconds < 15, f"stop took {stop_seconds:.1f} s"
    assert not srv.running()
    assert "successfully unloaded 'add'" in srv.log_path.read_text()


@pytest.mark.slow
@needs_triton
def test_failed_start_cleans_up_and_shows_the_log(tmp_path):
    (tmp_path / "repo").mkdir()
    srv = TritonServer(tmp_path / "repo", log_dir=tmp_path / "logs",
                       extra_args=["--no-such-flag=1"])
    with pytest.raises(ServiceError) as info:
        srv.start()
    assert "exited" in str(info.value)
    assert "no-such-flag" in info.value.log_tail
    assert not srv.running()


@needs_triton
def test_numpy2_python_env_is_refused(tmp_path):
    # the grading venv has numpy 2: the stub would answer with empty outputs
    (tmp_path / "repo").mkdir()
    if not list(Path(sys.prefix).glob("lib/python*/site-packages/numpy-2*.dist-info")):
        pytest.skip("this interpreter's venv has no numpy 2")
    with pytest.raises(TritonError, match="numpy 2"):
        TritonServer(tmp_path / "repo", log_dir=tmp_path / "logs", python_env=Path(sys.prefix))


def test_missing_environment_is_reported(tmp_path):
    ok, why = triton_available(tmp_path / "nowhere")
    assert not ok and "make setup" in why


# --------------------------------------------------------------------------- pure helpers
LOAD_FAILURE = ("load failed for model 'm': version 1 is at UNAVAILABLE state: Internal: "
                "ValueError: boom\n\nAt:\n  /tmp/repo/m/1/model.py(7): initialize\n;\n")

POLL_LOG = """\
I1126 14:17:07.288194 4999 model_lifecycle.cc:472] "loading: other:1"
[libprotobuf ERROR /tmp/build/text_format.cc:337] Error parsing text-format inference.ModelConfig: 3:57: Expected ",", found "}".
E1126 14:17:07.312116 4999 model_repository_manager.cc:1460] "Poll failed for model directory 'm': failed to read text proto from /tmp/repo/m/config.pbtxt"
"""


def test_explain_initialize_failure():
    text = explain_load_failure("m", LOAD_FAILURE, repository=Path("/tmp/repo"))
    assert text.splitlines() == ["ValueError: boom", "At:", "  m/1/model.py(7): initialize"]


def test_explain_several_failed_versions():
    message = ("load failed for model 'm': version 1 is at UNAVAILABLE state: Internal: A;\n"
               "version 2 is at UNAVAILABLE state: Invalid argument: B;\n")
    assert explain_load_failure("m", message) == "version 1: A\nversion 2: Invalid argument: B"


def test_explain_config_parse_failure_from_log():
    lines = relevant_log_lines(POLL_LOG, "m")
    assert lines[0].startswith("Error parsing text-format")
    text = explain_load_failure("m", "failed to load 'm', failed to poll from model repository",
                                lines, repository="/tmp/repo")
    assert text.splitlines()[:2] == [
        "failed to poll from model repository",
        'm/config.pbtxt line 3, column 57: Expected ",", found "}".']
    assert "/tmp/repo" not in text
    assert relevant_log_lines(POLL_LOG, "other") == []  # info lines are not errors


def test_model_config_text_becomes_json():
    parsed = parse_model_config(ADD_CONFIG)
    assert parsed["max_batch_size"] == 8 and parsed["input"][1]["name"] == "INPUT1"
    assert '"max_batch_size": 8' in model_config_json(ADD_CONFIG)
    assert model_config_json({"max_batch_size": 4}) == '{"max_batch_size": 4}'
    with pytest.raises(ValueError, match="3:"):
        parse_model_config(BROKEN_CONFIG.strip())


# --------------------------------------------------------------------------- docker request
PORTS = HostPorts(http=18000, grpc=18001, metrics=18002)


def test_container_request_defaults(tmp_path):
    request = container_request(tmp_path, ports=PORTS)
    assert request["image"] == DEFAULT_IMAGE == "nvcr.io/nvidia/tritonserver:24.08-py3"
    assert request["detach"] is True
    command = request["command"]
    assert command[0] == "tritonserver"
    for flag in ("--model-repository=/models", "--model-control-mode=explicit",
                 "--exit-timeout-secs=5", "--allow-gpu-metrics=true", "--http-port=8000",
                 "--grpc-port=8001", "--metrics-port=8002"):
        assert flag in command
    assert request["ports"] == {"8000/tcp": ("127.0.0.1", 18000),
                                "8001/tcp": ("127.0.0.1", 18001),
                                "8002/tcp": ("127.0.0.1", 18002)}
    assert request["volumes"] == {str(tmp_path): {"bind": "/models", "mode": "ro"}}
    assert request["device_requests"] == [
        {"driver": "nvidia", "capabilities": [["gpu"]], "count": -1}]
    assert request["shm_size"] == "1g"


def test_container_request_without_gpus_and_with_extras(tmp_path):
    request = container_request(tmp_path, ports=PORTS, gpus=None, name="lg-triton",
                                extra_args=["--log-info=true"], environment={"A": "1"})
    assert "device_requests" not in request
    assert "--allow-gpu-metrics=false" in request["command"]
    assert request["command"][-1] == "--log-info=true"
    assert request["name"] == "lg-triton" and request["environment"] == {"A": "1"}


@pytest.mark.parametrize("gpus, expected", [
    ("all", {"count": -1}),
    (2, {"count": 2}),
    ("0,1", {"device_ids": ["0", "1"]}),
    (["GPU-1234"], {"device_ids": ["GPU-1234"]}),
])
def test_gpu_device_requests(gpus, expected):
    (request,) = gpu_device_requests(gpus)
    assert request["capabilities"] == [["gpu"]] and request["driver"] == "nvidia"
    assert {k: v for k, v in request.items() if k in ("count", "device_ids")} == expected


@pytest.mark.parametrize("gpus", [None, 0, "none"])
def test_no_gpu_device_requests(gpus):
    assert gpu_device_requests(gpus) == []


def test_container_request_rejects_bad_input(tmp_path):
    with pytest.raises(ValueError, match="absolute"):
        container_request(Path("relative/repo"), ports=PORTS)
    with pytest.raises(ValueError):
        gpu_device_requests(-1)


def test_container_request_is_accepted_by_the_docker_sdk(tmp_path):
    """The request goes through docker-py's own run() -> create_container() conversion."""
    docker_containers = pytest.importorskip("docker.models.containers")
    request = container_request(tmp_path, ports=PORTS, gpus=["GPU-1234"])
    kwargs = {k: v for k, v in request.items() if k != "detach"}
    kwargs["version"] = "1.43"
    create = docker_containers._create_container_args(kwargs)
    host = create["host_config"]
    assert host["DeviceRequests"] == [{"Driver": "nvidia", "Count": 0,
                                       "DeviceIDs": ["GPU-1234"], "Capabilities": [["gpu"]],
                                       "Options": {}}]
    assert host["PortBindings"]["8000/tcp"] == [{"HostIp": "127.0.0.1", "HostPort": "18000"}]
    assert host["Binds"] == [f"{tmp_path}:/models:ro"]
    assert host["ShmSize"] == 1 << 30
    assert create["command"] == request["command"] and create["image"] == DEFAULT_IMAGE
