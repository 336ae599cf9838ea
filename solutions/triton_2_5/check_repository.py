"""Lab triton_2_5 — check a Triton model repository before it ships (reference solution).

    python check_repository.py MODEL_REPOSITORY

Exit 0 when every model looks loadable, 1 with one line per problem (naming the model)
otherwise. It catches statically what the server would refuse at load time: config.pbtxt
syntax, dims and data types, max_batch_size, version folders, ensemble wiring. (An
`initialize()` that raises needs a server: that is the job of a load test.)
"""

from __future__ import annotations

import sys
from pathlib import Path

from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc


def read_config(folder: Path) -> tuple[mc.ModelConfig | None, str | None]:
    try:
        text = (folder / "config.pbtxt").read_text()
    except OSError as exc:
        return None, f"cannot read config.pbtxt: {exc}"
    try:
        return text_format.Parse(text, mc.ModelConfig()), None
    except text_format.ParseError as exc:
        return None, f"config.pbtxt does not parse: {exc}"


def check_tensors(config: mc.ModelConfig) -> list[str]:
    problems = []
    for kind, tensors in (("input", config.input), ("output", config.output)):
        for t in tensors:
            if t.data_type == mc.TYPE_INVALID:
                problems.append(f"{kind} '{t.name}' has no valid data_type")
            if not t.dims and not t.HasField("reshape"):
                problems.append(f"{kind} '{t.name}' must specify dims")
            if any(d == 0 or d < -1 for d in t.dims):
                problems.append(f"{kind} '{t.name}' dims {list(t.dims)}: each must be >= 1 or -1")
    return problems


def check_versions(folder: Path, config: mc.ModelConfig) -> list[str]:
    present = {int(p.name) for p in folder.iterdir() if p.is_dir() and p.name.isdigit()}
    if not present:
        return ["no numbered version folder (e.g. 1/)"]
    if config.version_policy.HasField("specific"):
        missing = sorted(set(config.version_policy.specific.versions) - present)
        if missing:
            return [f"version_policy names version(s) {missing} but there is no such folder"]
    return []


def check_ensemble(name: str, config: mc.ModelConfig, configs: dict) -> list[str]:
    problems = []
    known = {t.name: (t.data_type, list(t.dims)) for t in config.input}
    used: set[str] = set()
    for step in config.ensemble_scheduling.step:
        target = configs.get(step.model_name)
        if target is None:
            problems.append(f"step model '{step.model_name}' is not in the repository")
            continue
        if target.max_batch_size < config.max_batch_size:
            problems.append(f"max_batch_size {config.max_batch_size} exceeds step "
                            f"'{step.model_name}' max_batch_size {target.max_batch_size}")
        inputs = {t.name for t in target.input}
        outputs = {t.name: (t.data_type, list(t.dims)) for t in target.output}
        for key, value in step.input_map.items():
            if key not in inputs:
                problems.append(f"input_map key '{key}' is not an input of '{step.model_name}'")
            if value not in known:
                problems.append(f"input_map value '{value}' is no ensemble input or earlier "
                                "step output")
            used.add(value)
        for key, value in step.output_map.items():
            if key not in outputs:
                problems.append(f"output_map key '{key}' is not an output of "
                                f"'{step.model_name}'")
            else:
                known[value] = outputs[key]
    for t in config.output:
        if t.name not in known:
            problems.append(f"ensemble output '{t.name}' is produced by no step")
        elif known[t.name][0] != t.data_type:
            problems.append(f"ensemble output '{t.name}' data type differs from its step's")
        elif known[t.name][1] != list(t.dims):
            problems.append(f"ensemble output '{t.name}' dims {list(t.dims)} differ from its "
                            f"step's {known[t.name][1]}")
    for t in config.input:
        if t.name not in used:
            problems.append(f"ensemble input '{t.name}' is not used by any step")
    return problems


def check(repository: Path) -> list[str]:
    """One line per problem, each starting with the model's name."""
    problems: list[str] = []
    configs: dict[str, mc.ModelConfig] = {}
    folders = sorted(p for p in repository.iterdir() if p.is_dir() and not p.name.startswith("."))
    for folder in folders:
        config, error = read_config(folder)
        if error:
            problems.append(f"{folder.name}: {error}")
            continue
        configs[folder.name] = config
        found = []
        if config.name and config.name != folder.name:
            found.append(f"name '{config.name}' differs from its folder name")
        if config.max_batch_size < 0:
            found.append("max_batch_size must be >= 0")
        found += check_tensors(config) + check_versions(folder, config)
        problems += [f"{folder.name}: {p}" for p in found]
    for name, config in configs.items():
        if config.platform == "ensemble":
            problems += [f"{name}: {p}" for p in check_ensemble(name, config, configs)]
    return problems


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python check_repository.py MODEL_REPOSITORY", file=sys.stderr)
        return 2
    repository = Path(argv[1])
    if not repository.is_dir():
        print(f"{repository} is not a folder", file=sys.stderr)
        return 2
    problems = check(repository)
    for line in problems:
        print(line)
    print(f"{len(problems)} problem(s) in {repository}" if problems else f"{repository}: OK")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
