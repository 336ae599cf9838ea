"""NVIDIA Triton Inference Server for graders, without Docker (and with it: `.container`).

The wheel `nvidia-pytriton==0.7.0` bundles a real `tritonserver` (2.51) and its Python
backend. labgrade does not use pytriton's Python API: it runs the bundled binary against an
ordinary model repository (the student's), in explicit model-control mode, as a
`ManagedProcess`. `scripts/setup-triton-env.sh` creates the environment that holds the
wheel (`.venv-triton`, or `$LABGRADE_TRITON_VENV`); the grading process itself only needs
the standard library (plus `prometheus_client` for `metrics()` and `tritonclient` for the
convenience clients).

One module per job:

    errors        TritonError and its subclasses (ModelLoadError: a reason for a student)
    distribution  find the bundled server, check the stub's Python env, the backend dir
    config        config.pbtxt text <-> dict / the load API's JSON
    feedback      the server's log lines and load errors, made readable
    metrics       the metrics page (through labgrade.runtime.prom)
    net           loopback HTTP without proxies, port checks, free ports
    logfile       the server's log file, read from a mark
    processes     the server's process group, its stubs' shared memory
    api           TritonAPI: the HTTP/REST client side, shared by both servers
    server        TritonServer: the bundled server as a managed process
    container     TritonContainer: the course image through the docker SDK (GPU path)
    crash         CrashWatch and a rerun-once hook for the bundled 2.51's rare aborts

Start-up failures (the server exited or never became live) raise
`labgrade.runtime.process.ServiceError`, whose message carries the tail of the server log.
`container` and `crash` are imported by name (`labgrade.runtime.triton.crash`); the rest is
re-exported here.
"""

from labgrade.runtime.triton.api import TritonAPI
from labgrade.runtime.triton.config import model_config_json, parse_model_config
from labgrade.runtime.triton.distribution import (PYTRITON_VERSION, SETUP_HINT, VENV_ENV_VAR,
                                                  TritonDistribution, check_python_env,
                                                  default_triton_venv, find_triton,
                                                  prepare_backend_dir, python_libdir,
                                                  triton_available)
from labgrade.runtime.triton.errors import (ModelLoadError, TritonError, TritonNotInstalled,
                                            TritonRequestError)
from labgrade.runtime.triton.feedback import explain_load_failure, relevant_log_lines
from labgrade.runtime.triton.metrics import Metrics
from labgrade.runtime.triton.processes import (DEFAULT_TRITON_SHM_PREFIX, SHM_DIR,
                                               SHM_PREFIX_ROOT, descendant_pids,
                                               process_group_pids, shm_segments,
                                               sweep_stale_shm)
from labgrade.runtime.triton.server import TritonServer

__all__ = [
    "DEFAULT_TRITON_SHM_PREFIX", "PYTRITON_VERSION", "SETUP_HINT", "SHM_DIR", "SHM_PREFIX_ROOT",
    "VENV_ENV_VAR", "Metrics", "ModelLoadError", "TritonAPI", "TritonDistribution",
    "TritonError", "TritonNotInstalled", "TritonRequestError", "TritonServer",
    "check_python_env", "default_triton_venv", "descendant_pids", "explain_load_failure",
    "find_triton", "model_config_json", "parse_model_config", "prepare_backend_dir",
    "process_group_pids", "python_libdir", "relevant_log_lines", "shm_segments",
    "sweep_stale_shm", "triton_available",
]
