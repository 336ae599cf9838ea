"""What the grader adds to its copy of the student's model_repository/: the lab's own
weights in the student's model, and the grader's models beside it.

- `mlp_reference`, versions 1 and 2: the client items grade against it, so a broken
  config.pbtxt or a raising initialize() costs only the items about the student's model;
  two versions, so that a count "summed over versions" differs from one version's;
- `mlp_reference_twin`, one version: its name starts with the reference's, so a metrics
  reader that matches model names by prefix counts too much.

Both run graders/triton_2_1/reference/mlp_reference/1/model.py (numpy, from mlp.npz).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from labgrade.kit.triton import IGNORED

HERE = Path(__file__).resolve().parent
WEIGHTS = HERE / "mlp.pt"        # what the student's model serves (the lab's file)
WEIGHTS_NPZ = HERE / "mlp.npz"   # the same numbers, for numpy (reference net and models)
REFERENCE = HERE / "reference" / "mlp_reference"


def twin_of(reference: str) -> str:
    return f"{reference}_twin"


def add_grader_files(repository: Path, settings: dict) -> str | None:
    """Put the lab's weights and the grader's models into `repository` (the grader's copy).
    Returns what is wrong with the student's repository, or None."""
    student = repository / settings["model"]
    if (student / "1").is_dir():
        shutil.copy2(WEIGHTS, student / "1" / "mlp.pt")  # the lab's weights, whatever was there
    for name in (settings["reference_model"], twin_of(settings["reference_model"])):
        target = repository / name
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(REFERENCE, target, ignore=IGNORED)
        shutil.copy2(WEIGHTS_NPZ, target / "1" / "mlp.npz")
        config = target / "config.pbtxt"
        config.write_text(config.read_text().replace(f'"{REFERENCE.name}"', f'"{name}"'))
    reference = repository / settings["reference_model"]
    shutil.copytree(reference / "1", reference / "2")
    if not (student / "config.pbtxt").is_file():
        return (f"model_repository/{settings['model']}/config.pbtxt is missing: the model must "
                f"be served under the name {settings['model']!r}")
    return None
