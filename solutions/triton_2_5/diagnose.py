"""Lab triton_2_5 — name the fault behind a model that does not load (reference solution).

`diagnose(model, error, log)` gets what an operator sees when `load_model` fails: the
server's error message (`error`) and the server log lines written while it tried (`log`),
with repository paths made relative. It returns the fault class, where to fix it, and how.
"""

from __future__ import annotations

import re

FIXES = {
    "config_syntax": "fix the protobuf text syntax at that line of config.pbtxt "
                     "(every scalar field needs 'field: value', strings are quoted, "
                     "brackets balance)",
    "bad_dtype": "give the tensor a valid data_type (TYPE_FP32, TYPE_INT64, ...) that matches "
                 "what the model (or the ensemble step) produces",
    "wrong_dims": "set dims to the tensor's shape without the batch dimension: every entry "
                  ">= 1, or -1 for a variable size; ensemble tensors must match the step's",
    "max_batch_size": "max_batch_size must be >= 0, and an ensemble's may not exceed the "
                      "smallest max_batch_size of the models it contains",
    "missing_version": "add the numbered version folder (e.g. 1/model.py) or make "
                       "version_policy name versions that exist",
    "initialize_raised": "fix initialize() in model.py at that line (the traceback names it): "
                         "a missing file, a wrong argument or an unavailable device",
    "ensemble_wiring": "make every input_map key an input of the step's model, every value an "
                       "ensemble input or an earlier step's output, every model_name an "
                       "existing model, and every ensemble output produced by a step",
}

_PARSE = re.compile(r"Error parsing text-format inference\.ModelConfig: (\d+):(\d+): (.*)")
_TRACEBACK = re.compile(r"(\S+/model\.py)\((\d+)\): initialize")


def diagnose(model: str, error: str, log: str) -> dict:
    """{"fault": one of the seven classes, "where": path to fix, "fix": what to do}."""
    text = f"{error}\n{log}"
    config = f"{model}/config.pbtxt"
    fault, where = _classify(model, text, config)
    return {"fault": fault, "where": where, "fix": FIXES[fault]}


def _classify(model: str, text: str, config: str) -> tuple[str, str]:
    parse = _PARSE.search(text)
    if parse:
        line, message = parse.group(1), parse.group(3)
        fault = "bad_dtype" if 'field "data_type"' in message else "config_syntax"
        return fault, f"{config}:{line}"
    if "must specify 'data_type'" in text or "inconsistent data type" in text:
        return "bad_dtype", config
    if "dimension must be" in text or "must specify 'dims'" in text \
            or "inconsistent shape" in text:
        return "wrong_dims", config
    if "max_batch_size" in text or "maximum batch size" in text:
        return "max_batch_size", config
    if "at least one version must be available" in text:
        named = re.search(rf"version (\d+) is specified for model '{re.escape(model)}'", text)
        return "missing_version", f"{model}/{named.group(1)}" if named else model
    raised = _TRACEBACK.search(text)
    if raised:
        return "initialize_raised", f"{raised.group(1)}:{raised.group(2)}"
    return "ensemble_wiring", config
