"""lab.toml: one typed reader (labgrade.labs), its schema and profile inheritance, and the
READMEs' published-targets tables generated from it (labgrade.targets). No grading runs."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from labgrade import labs, targets
from labgrade.delivery import batch
from labgrade.delivery import DeliveryError

ROOT = Path(__file__).resolve().parents[1]
SNAPSHOT = Path(__file__).parent / "data" / "lab_settings.json"
HEAD = 'id = "lab_7_7"\ntitle = "seven"\nfiles = ["x.py"]\n'


def write_lab(tmp_path: Path, body: str, *, head: str = HEAD) -> Path:
    graders = tmp_path / "graders" / "lab_7_7"
    graders.mkdir(parents=True, exist_ok=True)
    (graders / "lab.toml").write_text(head + textwrap.dedent(body))
    return tmp_path


def load(tmp_path: Path, body: str, **kw) -> labs.Lab:
    return labs.load_lab(write_lab(tmp_path, body, **kw), "lab_7_7")


def config_error(tmp_path: Path, body: str, **kw) -> str:
    with pytest.raises(labs.LabConfigError) as caught:
        load(tmp_path, body, **kw)
    return str(caught.value)


# ------------------------------------------------------------------ the course's labs
def test_effective_settings_are_the_snapshot():
    """What graders see per lab, profile and --models: unchanged by the move of the gpu
    profiles to `extends = "cpu"` (the snapshot was taken from the flat files before). A
    deliberate change to a lab's settings updates the snapshot in the same commit:
    `python -m labgrade.labs settings > tests/data/lab_settings.json` — and review its diff:
    with `extends`, a change to cpu also changes gpu."""
    assert labs.effective_settings(ROOT) == json.loads(SNAPSHOT.read_text())


def test_gpu_profiles_extend_cpu_where_that_removes_duplication():
    for lab_id in ("lab_2_2", "triton_2_1", "triton_2_2"):
        assert labs.load_lab(ROOT, lab_id).profiles["gpu"].extends == "cpu", lab_id


def test_readme_targets_tables_match_lab_toml():
    stale = targets.stale_readmes(ROOT)
    assert not stale, (f"{', '.join(map(str, stale))}: the targets table differs from "
                       "lab.toml; run `python -m labgrade.labs readmes` and commit the result")
    for lab_id in labs.all_lab_ids(ROOT):
        assert labs.load_lab(ROOT, lab_id).targets, f"{lab_id} publishes no [targets]"


def test_lab_2_2_readme_publishes_each_profiles_ngram_threshold():
    """The drift that started this: the README said 1.3x, the gpu profile grades at 1.4x."""
    text = (ROOT / "labs" / "lab_2_2" / "README.md").read_text()
    assert "| n-gram speculation speed-up: full points from | 1.3x | 1.4x |" in text
    assert "| TTFT speed-up with the cache: full points from | 1.3x | not graded |" in text


# ------------------------------------------------------------------ inheritance
def test_extends_starts_from_the_parent_and_replaces_whole_values(tmp_path):
    lab = load(tmp_path, """
        [profiles.cpu]
        device = "cpu"
        rounds = 5
        kwargs = { dtype = "float32", eager = true }
        [profiles.cpu.not_graded]
        test_a = "not on cpu"
        [profiles.gpu]
        extends = "cpu"
        device = "cuda"
        kwargs = { dtype = "bfloat16" }
        [profiles.gpu.hub]
        model = "org/model"
    """)
    gpu = lab.settings("gpu")
    assert gpu == {"device": "cuda", "rounds": 5, "kwargs": {"dtype": "bfloat16"},
                   "not_graded": {"test_a": "not on cpu"}}  # tables are replaced, not merged
    assert lab.settings("gpu", "hub")["model"] == "org/model"
    assert lab.settings("cpu") == {"device": "cpu", "rounds": 5,
                                   "kwargs": {"dtype": "float32", "eager": True},
                                   "not_graded": {"test_a": "not on cpu"}}
    with pytest.raises(labs.LabConfigError, match=r"\[profiles.cpu.hub\]"):
        lab.settings("cpu", "hub")
    assert lab.settings("nowhere") == {}


def test_resources_are_typed(tmp_path):
    lab = load(tmp_path, "[resources]\nmemory_gib = 6\ncpus = 2\nminutes = 45\n")
    assert lab.resources == labs.Resources(memory_gib=6.0, cpus=2.0, minutes=45.0)
    assert load(tmp_path, "").resources == labs.Resources()


def test_batch_plans_from_the_typed_reader(tmp_path):
    course = write_lab(tmp_path, "[resources]\nmemory_gib = 6\ncpus = 2\nminutes = 10\n")
    plan = batch.make_plan(course, "lab_7_7")
    assert (plan.memory_bytes, plan.cpus, plan.timeout) == (6 * batch.GiB, 2.0, 600.0)
    write_lab(tmp_path, "memory_gib = 6\n")
    with pytest.raises(DeliveryError, match=r"graders/lab_7_7/lab.toml: memory_gib: .*resources"):
        batch.make_plan(course, "lab_7_7")


# ------------------------------------------------------------------ the schema
@pytest.mark.parametrize("body, head, key", [
    ("", 'id = "lab_7_7"\nfiles = ["x.py"]\n', "title: required"),
    ("", 'id = "lab_7_7"\ntitle = "seven"\nfiles = []\n', "files: must be a non-empty list"),
    ("", 'id = "lab_8_8"\ntitle = "seven"\nfiles = ["x.py"]\n', "id: is 'lab_8_8' but the folder"),
    ("item_timeout = -1\n", HEAD, "item_timeout: must be a positive number"),
    ("titel = 'typo'\n", HEAD, "titel: unknown key"),
    ("[resources]\nmemory_gib = '6'\n", HEAD, "resources.memory_gib: must be a positive number"),
    ("[resources]\ncpus = true\n", HEAD, "resources.cpus: must be a positive number"),
    ("[resources]\ndisk_gib = 1\n", HEAD, "resources.disk_gib: unknown key"),
    ("[profiles.tpu]\nx = 1\n", HEAD, "profiles.tpu: unknown profile"),
    ("[profiles.gpu]\nextends = 'cpu'\n", HEAD, "profiles.gpu.extends: names 'cpu'"),
    ("[profiles.cpu]\nextends = 'gpu'\n[profiles.gpu]\nextends = 'cpu'\n", HEAD,
     "extends: profiles extend each other in a circle"),
    ("[profiles.gpu]\nnot_graded = { test_a = 3 }\n", HEAD,
     "profiles.gpu.not_graded.test_a: must be a non-empty string"),
    ("[profiles.gpu]\nnot_graded = { speed = 'why' }\n", HEAD,
     "profiles.gpu.not_graded.speed: names no item"),
    ("[profiles.gpu]\nhub = 'org/model'\n", HEAD, "profiles.gpu.hub: must be a table"),
    ("[targets]\nspeedup_full_at = 'full points'\n[profiles.cpu]\nx = 1\n", HEAD,
     "targets.speedup_full_at: names no setting of any profile"),
    ("[targets]\nx = { text = 'x', units = 's' }\n[profiles.cpu]\nx = 1\n", HEAD,
     "targets.x.units: unknown key"),
    ("[targets]\nx = { unit = 's' }\n[profiles.cpu]\nx = 1\n", HEAD,
     "targets.x.text: must be a non-empty string"),
])
def test_a_mistake_names_the_file_and_the_key(tmp_path, body, head, key):
    message = config_error(tmp_path, body, head=head)
    assert message.startswith("graders/lab_7_7/lab.toml: "), message
    assert key in message, message


def test_unreadable_or_missing_lab_toml(tmp_path):
    assert "graders/lab_7_7/lab.toml" in config_error(tmp_path, "[profiles.cpu\n")
    (tmp_path / "graders" / "lab_7_7" / "lab.toml").unlink()
    with pytest.raises(labs.LabConfigError, match="lab.toml is missing"):
        labs.load_lab(tmp_path, "lab_7_7")


# ------------------------------------------------------------------ the targets table
def test_targets_table_per_profile(tmp_path):
    course = write_lab(tmp_path, """
        [targets]
        ratio_full_at = { text = "speed-up, full points", unit = "x", item = "test_speed" }
        budget_bytes = "memory, at most"
        sizes = "batch sizes"
        [profiles.cpu]
        ratio_full_at = 1.3
        budget_bytes = 268435456
        sizes = [1, 3, 8]
        [profiles.gpu]
        extends = "cpu"
        budget_bytes = 3221225472
        not_graded = { test_speed = "no time to save on a GPU" }
    """)
    readme = course / "labs" / "lab_7_7" / "README.md"
    readme.parent.mkdir(parents=True)
    readme.write_text("# seven\n\n<!-- targets:begin -->\n<!-- targets:end -->\n\nmore\n")
    assert targets.stale_readmes(course) == [readme]
    assert targets.main(course) == 0
    assert targets.stale_readmes(course) == [] and targets.main(course, check=True) == 0
    text = readme.read_text()
    assert text.startswith("# seven\n\n<!-- targets:begin") and text.endswith("\n\nmore\n")
    assert "| target | cpu profile | gpu profile |" in text
    assert "| speed-up, full points | 1.3x | not graded |" in text
    assert "| memory, at most | 256 MiB | 3 GiB |" in text
    assert "| batch sizes | 1, 3, 8 | 1, 3, 8 |" in text
    readme.write_text(text.replace("1.3x", "1.2x"))
    assert targets.main(course, check=True) == 1


def test_a_readme_without_markers_says_where_the_table_goes(tmp_path):
    course = write_lab(tmp_path, "[targets]\nx = 'x'\n[profiles.cpu]\nx = 1\n")
    readme = course / "labs" / "lab_7_7" / "README.md"
    readme.parent.mkdir(parents=True)
    readme.write_text("# seven\n")
    with pytest.raises(labs.LabConfigError, match="targets:begin"):
        targets.stale_readmes(course)


def test_cross_lab_grader_imports_are_declared_and_packed():
    """A grader module imported from another lab (`from triton_2_1.tritonio import ...`) is
    declared in lab.toml `uses`, so a Gradescope autograder of the lab carries it."""
    import re

    from labgrade.delivery import gradescope
    imported = re.compile(r"^\s*(?:from|import)\s+((?:lab|triton)_\d+_\d+)\b", re.M)
    for lab_id in labs.all_lab_ids(ROOT):
        lab = labs.load_lab(ROOT, lab_id, host=False)
        used = {m for path in lab.graders_dir.rglob("*.py")
                for m in imported.findall(path.read_text())} - {lab_id}
        assert used <= set(lab.uses), (f"graders/{lab_id} imports {sorted(used)}; "
                                       f"lab.toml uses = {list(lab.uses)}")
        if lab.uses:
            files = gradescope.bundle_files(ROOT, lab_id, "cpu")
            for other in lab.uses:
                assert any(f.startswith(f"graders/{other}/") for f in files), other


def test_uses_names_another_lab(tmp_path):
    root = tmp_path / "course"
    for lab_id in ("lab_9_1", "lab_9_2"):
        (root / "graders" / lab_id).mkdir(parents=True)
        (root / "graders" / lab_id / "lab.toml").write_text(
            f'id = "{lab_id}"\ntitle = "t"\nfiles = ["a.py"]\nuses = ["lab_9_2"]\n')
    assert labs.load_lab(root, "lab_9_1").uses == ("lab_9_2",)
    with pytest.raises(labs.LabConfigError, match=r"uses\[0\].*not another lab"):
        labs.load_lab(root, "lab_9_2")
