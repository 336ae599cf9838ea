"""lab_2_4 graded for real: the deployment files through hadolint, dockerfile-parse, Compose
v2's loader, the compose-spec schema, kubectl kustomize and kubernetes-validate; the gateway
under uvicorn in front of a real vLLM OpenAI server. The solution gets full marks, the
starter 0, each known-wrong submission loses the items it targets (each for its own defect:
the message words are checked) while a neighbour still passes.

Only three gradings start the vLLM server (solution and the two gateway overlays); the
file overlays select file items only and take seconds.
"""

from __future__ import annotations

import pytest

from conftest import ROOT, items_by_name, verdict

pytestmark = pytest.mark.slow
LAB = "lab_2_4"
WRONG = ROOT / "fixtures" / LAB
DOCKERFILE_ITEMS = ["test_dockerfile_lints_clean", "test_dockerfile_pins_base_images",
                    "test_dockerfile_runs_as_non_root",
                    "test_dockerfile_exec_form_and_healthcheck",
                    "test_dockerfile_config_from_arg_env_without_secrets",
                    "test_dockerfile_dependencies_before_code"]
COMPOSE_ITEMS = ["test_compose_is_valid", "test_compose_gateway_waits_for_healthy_server",
                 "test_compose_reserves_a_gpu", "test_compose_restart_policy",
                 "test_compose_key_from_env_file_or_secret", "test_compose_model_cache_volume"]
K8S_ITEMS = ["test_k8s_manifests_valid", "test_k8s_probes", "test_k8s_resources_and_gpu",
             "test_k8s_service_hpa_pdb", "test_k8s_secret_and_security_context",
             "test_k8s_termination_grace_covers_drain"]

# fixture -> (-k selection, {item that must fail: words its message must hold}, must pass)
KNOWN_WRONG = {
    "wrong_dockerfile": ("dockerfile or test_compose_is_valid", {
        "test_dockerfile_lints_clean": ["DL3007"],
        "test_dockerfile_pins_base_images": ["python:latest"],
        "test_dockerfile_runs_as_non_root": ["gateway image runs as root"],
        "test_dockerfile_exec_form_and_healthcheck": ["shell form"],
        "test_dockerfile_config_from_arg_env_without_secrets": ["GATEWAY_API_KEYS", "secret"],
        "test_dockerfile_dependencies_before_code": ["copies the code before"]},
        ["test_compose_is_valid"]),
    "wrong_dockerfile_syntax": ("dockerfile or test_compose_is_valid",
                                {name: ["Dockerfile:2:", "cannot parse"]
                                 for name in DOCKERFILE_ITEMS}, ["test_compose_is_valid"]),
    "wrong_compose": ("compose or test_dockerfile_lints_clean", {
        "test_compose_gateway_waits_for_healthy_server": ["'service_started'"],
        "test_compose_reserves_a_gpu": ["no NVIDIA GPU"],
        "test_compose_restart_policy": ["no restart policy"],
        "test_compose_key_from_env_file_or_secret": ["inline"],
        "test_compose_model_cache_volume": ["named volume"]},
        ["test_compose_is_valid", "test_dockerfile_lints_clean"]),
    "wrong_compose_yaml": ("compose or test_k8s_manifests_valid",
                           {name: ["line 4"]
                            for name in COMPOSE_ITEMS}, ["test_k8s_manifests_valid"]),
    "wrong_k8s": ("k8s or test_compose_is_valid", {
        "test_k8s_manifests_valid": ["autoscaling/v2beta2", "removed in Kubernetes 1.30"],
        "test_k8s_probes": ["readinessProbe", "/ready"],
        "test_k8s_resources_and_gpu": ["nvidia.com/gpu"],
        "test_k8s_service_hpa_pdb": ["autoscaling/v2"],
        "test_k8s_secret_and_security_context": ["literal value"],
        "test_k8s_termination_grace_covers_drain": ["is 10 s"]},
        ["test_compose_is_valid"]),
    "wrong_k8s_yaml": ("k8s or test_compose_is_valid",
                       {name: ["kubectl kustomize", "service.yaml", "line 5"]
                        for name in K8S_ITEMS}, ["test_compose_is_valid"]),
    "wrong_gateway_import": ("api_keys or request_ids or test_compose_is_valid",
                             {"test_api_keys": ["ModuleNotFoundError", "gateway_helpers"],
                              "test_request_ids_in_access_log": ["gateway_helpers"]},
                             ["test_compose_is_valid"]),
    "wrong_gateway_policy": ("test_ready or api_keys or rate_limit or request_ids or "
                             "shutdown or stream_passes", {
                                 "test_ready_only_after_engine_and_health_always":
                                     ["/ready answered 200"],
                                 "test_api_keys": ["no Authorization header answered 403"],
                                 "test_rate_limit_per_key": ["Retry-After"],
                                 "test_request_ids_in_access_log": ["echo the caller's id"],
                                 "test_graceful_shutdown_drains_streams": ["SIGTERM"]},
                             ["test_stream_passes_events_through[completions]",
                              "test_stream_passes_events_through[chat]"]),
    "wrong_gateway_stream": ("stream_passes or api_keys", {
        "test_stream_passes_events_through[completions]": ["buffers the stream"],
        "test_stream_passes_events_through[chat]": ["buffers the stream"]},
        ["test_api_keys"]),
}


def test_solution_gets_full_marks(grade_lab):
    grade, proc = grade_lab(LAB, "--solution")
    failed = {i["name"]: i["message"] for i in grade["items"]
              if i["status"] not in ("passed", "out_of_scope")}
    assert not failed, failed
    assert grade["score"] == grade["max_score"] == 100
    items = items_by_name(grade)
    assert items["test_image_builds_and_turns_healthy"]["status"] == "out_of_scope"
    assert "Docker daemon" in items["test_image_builds_and_turns_healthy"]["message"]
    shutdown = items["test_graceful_shutdown_drains_streams"]["measured"]
    assert shutdown["exit_code"] == 0 and shutdown["exit_after_s"] < 30
    limits = items["test_rate_limit_per_key"]["measured"]
    assert limits["burst_passed"] >= 5 and limits["burst_limited"] >= 4
    tools = grade["environment"]["deploy_tools"]
    assert tools["hadolint"].startswith("Haskell Dockerfile Linter") and \
        tools["kubernetes-validate"][0].isdigit(), tools


def test_starter_scores_zero(grade_lab):
    grade, _ = grade_lab(LAB, "--starter")
    assert grade["score"] == 0 and grade["max_score"] == 100
    statuses = {i["status"] for i in grade["items"] if i["status"] != "out_of_scope"}
    assert statuses == {"failed"}, statuses  # the student's doing, not a grader error
    gateway = items_by_name(grade)["test_api_keys"]["message"]
    assert "TODO" in gateway and "create_app" in gateway, gateway


@pytest.mark.parametrize("fixture", sorted(KNOWN_WRONG))
def test_known_wrong_submission_loses_its_items(grade_lab, fixture):
    selection, must_fail, must_pass = KNOWN_WRONG[fixture]
    grade, _ = grade_lab(LAB, "--submission", str(WRONG / fixture), "-k", selection)
    items = items_by_name(grade)
    for name, words in must_fail.items():
        assert items[name]["status"] == "failed", verdict(items[name])
        assert items[name]["score"] == 0
        for word in words:
            assert word in items[name]["message"], (name, word, items[name]["message"])
    for name in must_pass:
        assert items[name]["status"] == "passed", verdict(items[name])
