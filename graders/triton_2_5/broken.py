"""Hidden broken model repositories: one fault of each published class, in every variant
the README promises, under model names drawn fresh each run.

Each `BrokenCase` is a whole small repository (the broken model and the models it needs).
`diagnose` items load them on the real tritonserver and hand the student the server's own
error; the CI item runs the student's repository check on each one. The expected answers
(`fault`, `where`) follow from the README's rules, not from the grader's wording: the
server's text is all the student's code sees.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

FAULTS = ("wrong_dims", "bad_dtype", "missing_version", "config_syntax", "initialize_raised",
          "max_batch_size", "ensemble_wiring")

# names that are prefixes of one another: a diagnosis that matches a model name loosely
# (or greps a log for it) gets the wrong line
_STEMS = ["embed", "embed_large", "rank", "ranker", "ranker_v2", "detect", "detector",
          "tok", "tokenizer", "score", "scorer", "post", "postprocess", "pre", "prep"]
_TENSORS = ["INPUT", "FEATURES", "X", "TOKENS", "IMAGE", "EMB"]
_OUTPUTS = ["OUTPUT", "SCORE", "Y", "LOGITS", "PROBS"]

MODEL_PY = '''import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        self.scale = np.float32(2.0){init}

    def execute(self, requests):
        responses = []
        for request in requests:
            x = pb_utils.get_input_tensor_by_name(request, "{inp}").as_numpy()
            y = (x * self.scale).astype(np.float32)
            responses.append(pb_utils.InferenceResponse([pb_utils.Tensor("{out}", y)]))
        return responses
'''

# initialize() failures (the line they raise on is the 8th of model.py, after `self.scale`)
_RAISES = [
    '\n        raise FileNotFoundError("weights.npz not found next to model.py")',
    '\n        self.labels = args["labels"]  # KeyError: no such argument',
    '\n        raise RuntimeError("CUDA device requested but none available")',
]
RAISE_LINE = 8


@dataclass(frozen=True)
class BrokenCase:
    """One hidden broken repository: load `model` from `files` (path -> text) after
    `needs` (good models it uses); the expected diagnosis is (`fault`, `where`)."""

    variant: str
    fault: str
    model: str
    where: str
    files: dict[str, str] = field(hash=False)
    needs: tuple[str, ...] = ()


def python_config(name: str, inp: str, out: str, *, max_batch_size: int = 8,
                  in_dims: str = "[ 4 ]", out_dims: str = "[ 4 ]", in_type: str = "TYPE_FP32",
                  out_type: str = "TYPE_FP32", extra: str = "") -> str:
    return (f'name: "{name}"\n'
            'backend: "python"\n'
            f"max_batch_size: {max_batch_size}\n"
            f'input [ {{ name: "{inp}" data_type: {in_type} dims: {in_dims} }} ]\n'
            f'output [ {{ name: "{out}" data_type: {out_type} dims: {out_dims} }} ]\n'
            "instance_group [ { kind: KIND_CPU count: 1 } ]\n" + extra)


def ensemble_config(name: str, step_model: str, step_in: str, step_out: str, *,
                    max_batch_size: int = 8, out_dims: str = "[ 4 ]",
                    out_type: str = "TYPE_FP32", map_key: str | None = None,
                    map_in: str = "RAW", map_out: str = "RESULT") -> str:
    return (f'name: "{name}"\n'
            'platform: "ensemble"\n'
            f"max_batch_size: {max_batch_size}\n"
            'input [ { name: "RAW" data_type: TYPE_FP32 dims: [ 4 ] } ]\n'
            f'output [ {{ name: "RESULT" data_type: {out_type} dims: {out_dims} }} ]\n'
            "ensemble_scheduling {\n  step [\n    {\n"
            f'      model_name: "{step_model}"\n      model_version: -1\n'
            f'      input_map {{ key: "{map_key or step_in}" value: "{map_in}" }}\n'
            f'      output_map {{ key: "{step_out}" value: "{map_out}" }}\n'
            "    }\n  ]\n}\n")


def write_files(root: Path, files: dict[str, str]) -> None:
    """Write a case's files (path -> text) under `root`."""
    for relpath, text in files.items():
        path = root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


class _Names:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.used: set[str] = set()

    def model(self) -> str:
        while True:
            name = f"{self.rng.choice(_STEMS)}_{self.rng.randrange(10, 99)}"
            if name not in self.used:
                self.used.add(name)
                return name

    def tensors(self) -> tuple[str, str]:
        return self.rng.choice(_TENSORS), self.rng.choice(_OUTPUTS)


def _python(name: str, config: str, inp: str, out: str, versions=(1,), init: str = "") -> dict:
    files = {f"{name}/config.pbtxt": config}
    for v in versions:
        files[f"{name}/{v}/model.py"] = MODEL_PY.format(init=init, inp=inp, out=out)
    return files


def _single(variant: str, fault: str, names: _Names, *, where: str = "config", versions=(1,),
            init: str = "", **config) -> BrokenCase:
    name = names.model()
    inp, out = names.tensors()
    text = python_config(name, inp, out, **config)
    return BrokenCase(variant, fault, name, _where(name, where),
                      _python(name, text, inp, out, versions, init))


def _where(name: str, where: str) -> str:
    return {"config": f"{name}/config.pbtxt", "model": name}.get(where, f"{name}/{where}")


def _ensemble(variant: str, fault: str, names: _Names, *, step_max_batch_size: int = 8,
              **ens) -> BrokenCase:
    step, name = names.model(), names.model()
    inp, out = names.tensors()
    files = _python(step, python_config(step, inp, out, max_batch_size=step_max_batch_size),
                    inp, out)
    files[f"{name}/config.pbtxt"] = ensemble_config(name, step, inp, out, **ens)
    files[f"{name}/1/.keep"] = ""  # an ensemble needs a version folder too
    return BrokenCase(variant, fault, name, f"{name}/config.pbtxt", files, needs=(step,))


def _syntax(variant: str, names: _Names, break_line) -> BrokenCase:
    """A config.pbtxt with one line broken by `break_line(line) -> line`: the parser names
    the line, which is what `where` must say."""
    name = names.model()
    inp, out = names.tensors()
    lines = python_config(name, inp, out).splitlines()
    index = names.rng.choice([2, 3, 4])  # max_batch_size, input or output
    lines[index] = break_line(lines[index])
    files = _python(name, "\n".join(lines) + "\n", inp, out)
    return BrokenCase(variant, "config_syntax", name, f"{name}/config.pbtxt:{index + 1}", files)


def hidden_cases(rng: random.Random, *, with_initialize: bool = True) -> list[BrokenCase]:
    """Every published variant once, fresh names. The unknown data type name is a parse
    error to protobuf but a `bad_dtype` to the README (the fix is the type, not the
    syntax): the diagnosis must look at what the parser complains about."""
    n = _Names(rng)
    bad_dtype_line = 4  # `input [...]`: the unknown type name is on this line
    cases = [
        _single("dims zero", "wrong_dims", n, in_dims="[ 0 ]"),
        _single("dims negative", "wrong_dims", n, out_dims=f"[ {rng.choice([-2, -5])} ]"),
        _single("dims missing", "wrong_dims", n, in_dims="[ ]"),
        _ensemble("ensemble shape", "wrong_dims", n, out_dims=f"[ {rng.choice([3, 8])} ]"),
        _single("data_type unset", "bad_dtype", n, in_type="TYPE_INVALID"),
        _single("data_type unknown name", "bad_dtype", n, where=f"config.pbtxt:{bad_dtype_line}",
                in_type=rng.choice(["TYPE_FLOAT", "TYPE_FLOAT32", "FP32"])),
        _ensemble("ensemble data type", "bad_dtype", n,
                  out_type=rng.choice(["TYPE_INT32", "TYPE_FP16"])),
        _single("no version folder", "missing_version", n, where="model", versions=()),
        _missing_policy_version(n),
        _syntax("stray brace", n, lambda line: line + " }"),
        _syntax("missing colon", n, lambda line: line.replace(":", "", 1)),
        _single("max_batch_size negative", "max_batch_size", n,
                max_batch_size=-rng.choice([1, 4])),
        _ensemble("ensemble batch larger than its step", "max_batch_size", n,
                  max_batch_size=rng.choice([16, 32])),
        _ensemble("input_map key is no input of the step", "ensemble_wiring", n,
                  map_key=rng.choice(["INPUT0", "IN", "DATA"])),
        _ensemble("step model does not exist", "ensemble_wiring", n),
        _ensemble("ensemble output never produced", "ensemble_wiring", n, map_out="HIDDEN"),
    ]
    # the step model of "step model does not exist" is renamed away from what it asks for
    cases[14] = _rename_step(cases[14], rng)
    if with_initialize:
        for k, text in enumerate(rng.sample(_RAISES, 2)):
            version = rng.choice([1, 2, 3])  # `where` names the folder the model lives in
            cases.append(_single(f"initialize raises ({k + 1})", "initialize_raised", n,
                                 where=f"{version}/model.py:{RAISE_LINE}", versions=(version,),
                                 init=text))
    return cases


def _missing_policy_version(n: _Names) -> BrokenCase:
    name = n.model()
    inp, out = n.tensors()
    wanted = n.rng.choice([2, 3])
    text = python_config(name, inp, out,
                         extra=f"version_policy: {{ specific: {{ versions: [ {wanted} ] }} }}\n")
    return BrokenCase("policy names a missing version", "missing_version", name,
                      f"{name}/{wanted}", _python(name, text, inp, out, versions=(1,)))


def _rename_step(case: BrokenCase, rng: random.Random) -> BrokenCase:
    """The ensemble asks for `<step>` but the repository holds `<step>x` (a typo)."""
    step = case.needs[0]
    typo = step + rng.choice(["x", "_old", "2"])
    files = {}
    for path, text in case.files.items():
        if path.startswith(f"{step}/"):
            path = typo + path[len(step):]
            text = text.replace(f'name: "{step}"', f'name: "{typo}"')
        files[path] = text
    return BrokenCase(case.variant, case.fault, case.model, case.where, files, needs=(typo,))


def good_repositories(rng: random.Random) -> dict[str, dict[str, str]]:
    """Repositories that load (checked against the server in the tests): a repository check
    must pass each. They hold what a careless check flags: variable dims (-1), two version
    folders under a specific policy, an ensemble, max_batch_size 0, a data type name the
    parser knows but a naive list lacks (TYPE_BF16), a comment line."""
    n = _Names(rng)
    plain, ens_step, ens, flat = n.model(), n.model(), n.model(), n.model()
    inp, out = n.tensors()
    first = _python(plain, "# a comment line\n" + python_config(
        plain, inp, out, in_dims="[ -1 ]", out_dims="[ -1 ]",
        extra="version_policy: { specific: { versions: [ 1, 2 ] } }\n"
              "dynamic_batching { }\n"), inp, out, versions=(1, 2))
    first.update(_python(flat, python_config(flat, inp, out, max_batch_size=0,
                                             in_dims="[ 2, 4 ]", out_dims="[ 2, 4 ]",
                                             in_type="TYPE_BF16", out_type="TYPE_BF16"),
                         inp, out))
    second = _python(ens_step, python_config(ens_step, inp, out), inp, out)
    second[f"{ens}/config.pbtxt"] = ensemble_config(ens, ens_step, inp, out)
    second[f"{ens}/1/.keep"] = ""
    return {"plain models": first, "an ensemble": second}
