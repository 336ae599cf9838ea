"""Public sanity checks for lab 2.1 — fast, no engine. `pytest labs/lab_2_1` runs them;
`pytest labs/lab_2_1 --grade` runs the real (hidden) graders instead."""

import inspect
import sys

import deploy

CPU = {"name": "cpu", "device": "cpu", "dtype": "float32", "max_model_len": 512,
       "kv_cache_budget_bytes": 256 * 1024 * 1024}


def test_functions_exist_with_the_documented_signatures():
    params = inspect.signature(deploy.generate_batch).parameters
    assert {"llm", "prompts", "max_tokens", "temperature", "stop"} <= set(params)
    assert {"host", "port", "served_model_name", "profile"} <= set(
        inspect.signature(deploy.server_command).parameters)


def test_engine_kwargs_is_plain_data_for_the_given_model():
    kwargs = deploy.engine_kwargs("/models/tiny", CPU)
    assert isinstance(kwargs, dict) and kwargs["model"] == "/models/tiny"
    assert kwargs.get("kv_cache_memory_bytes", 0) <= CPU["kv_cache_budget_bytes"]


def test_server_command_is_an_argv_using_this_python():
    argv = deploy.server_command("/models/tiny", host="127.0.0.1", port=8000,
                                 served_model_name="tiny-llama", profile=CPU)
    assert isinstance(argv, list) and all(isinstance(a, str) for a in argv)
    assert argv[0] == sys.executable, "start the server with the current Python interpreter"
    assert "8000" in argv and "tiny-llama" in argv
