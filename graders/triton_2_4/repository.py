"""What the grader puts into its copy of the student's model_repository/: the lab's MLP
weights, the given model.py files (whatever the submission holds there: timing and
determinism items rely on them), and `scorer_unbatched`, the batching item's baseline (the
same model, loaded with the student's configuration minus dynamic batching)."""

from __future__ import annotations

import shutil
from pathlib import Path

# graders/ is on sys.path (pytest imports grader packages from there)
from triton_2_1.grader_models import WEIGHTS_NPZ

GIVEN = ("mlp", "scorer", "sampler", "embedder", "urgent", "bulk")  # model.py files the lab ships complete
BASELINE = "scorer_unbatched"


def given_model(course_root: Path, model: str) -> Path:
    return course_root / "labs" / "triton_2_4" / "model_repository" / model / "1" / "model.py"


def add_grader_files(repository: Path, course_root: Path) -> None:
    for model in GIVEN:
        version = repository / model / "1"
        if version.is_dir():
            shutil.copy2(given_model(course_root, model), version / "model.py")
    if (repository / "mlp" / "1").is_dir():
        shutil.copy2(WEIGHTS_NPZ, repository / "mlp" / "1" / "mlp.npz")
    baseline = repository / BASELINE / "1"
    shutil.rmtree(baseline.parent, ignore_errors=True)
    baseline.mkdir(parents=True)
    shutil.copy2(given_model(course_root, "scorer"), baseline / "model.py")
    (baseline.parent / "config.pbtxt").write_text(f'name: "{BASELINE}"\nbackend: "python"\n')


def unbatched(config: dict) -> dict:
    """The student's served scorer configuration as the baseline: same batch limit,
    instances and tensors, no dynamic batching."""
    baseline = {k: v for k, v in config.items() if k not in ("dynamic_batching", "name")}
    baseline["name"] = BASELINE
    return baseline
