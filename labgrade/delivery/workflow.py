"""The GitHub Classroom workflow of a student repository (`.github/workflows/classroom.yml`).

On push it checks out the hidden graders (and the framework) from a private repository with
a token secret, sets up, grades each lab with `--classroom-output`, and hands each grading
step's `result` output to `classroom-resources/autograding-grading-reporter@v1`.

The reporter's contract (its README and src/main.js): input `runners` is a comma-separated
list of step ids; for each id it reads the environment variable `<ID upper-cased>_RESULTS`
(base64 of the JSON result), sums `tests[].score` against `max_score` and posts
`Points X/Y`. Classroom only picks the result up when the workflow is named
`Autograding Tests` and has one job named `run-autograding-tests`. Step ids here are
letters and digits only (the reporter's own check of `runners` allows nothing else).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath

from labgrade.delivery import DeliveryError
from labgrade.reports import classroom

WORKFLOW_PATH = ".github/workflows/classroom.yml"
WORKFLOW_NAME = "Autograding Tests"
JOB_ID = "run-autograding-tests"
REPORTER = "classroom-resources/autograding-grading-reporter@v1"

_REPO = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
_SECRET = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_LABEL = re.compile(r"^[A-Za-z0-9_.:-]+$")
_REF = re.compile(r"^[A-Za-z0-9_./-]+$")
_SAFE_ARG = re.compile(r"^[A-Za-z0-9_./:=+@%-]+$")


@dataclass(frozen=True)
class WorkflowOptions:
    graders_repo: str                        # owner/name of the private repository
    token_secret: str = "GRADERS_TOKEN"      # secret holding a token that can read it
    graders_ref: str = "main"
    graders_path: str = "graders"            # folder of <lab id>/ suites in that repository
    profile: str = "cpu"                     # cpu: GitHub-hosted runner; gpu: self-hosted
    gpu_runner_labels: tuple[str, ...] = ("self-hosted", "gpu")
    cpu_runner: str = "ubuntu-latest"
    python_version: str = "3.11"
    setup_command: str = "make setup"
    python: str = ".venv/bin/python"
    timeout_minutes: int = 0                 # 0: 30 (cpu) / 60 (gpu)
    framework_from_graders: bool = True      # use labgrade/ etc. from the private repository
    extra_index_url: str = "https://download.pytorch.org/whl/cpu"
    run_budget_seconds: int = 0              # 0: leave LABGRADE_RUN_BUDGET unset

    def validate(self) -> None:
        if not _REPO.match(self.graders_repo or ""):
            raise DeliveryError(f"--graders-repo must be OWNER/NAME, got {self.graders_repo!r}")
        if not _SECRET.match(self.token_secret) or self.token_secret.upper().startswith("GITHUB_"):
            raise DeliveryError(f"--token-secret {self.token_secret!r} is not a valid secret "
                                "name (letters, digits, _; not starting with GITHUB_)")
        if not _REF.match(self.graders_ref) or not _REF.match(self.graders_path):
            raise DeliveryError("--graders-ref and --graders-path take plain names and paths")
        if self.profile not in ("cpu", "gpu"):
            raise DeliveryError(f"--profile must be cpu or gpu, got {self.profile!r}")
        for label in self.gpu_runner_labels:
            if not _LABEL.match(label):
                raise DeliveryError(f"runner label {label!r} has characters a label cannot have")
        if not _LABEL.match(self.cpu_runner):
            raise DeliveryError(f"runner {self.cpu_runner!r} is not a runner label")
        if not _SAFE_ARG.match(self.python):
            raise DeliveryError(f"--python {self.python!r}: give a plain path")
        if "\n" in self.setup_command:
            raise DeliveryError("--setup-command must be one line")


def step_id(lab_id: str) -> str:
    """The grading step's id for a lab: letters and digits only (lab_2_1 -> lab21)."""
    return re.sub(r"[^A-Za-z0-9]", "", lab_id)


def _q(text: str) -> str:
    """A double-quoted YAML scalar."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _indent(block: str, spaces: int) -> str:
    pad = " " * spaces
    return "".join(pad + line if line.strip() else line for line in block.splitlines(True))


def _cache_with(options: WorkflowOptions) -> list[str]:
    return [
        "          path: |",
        "            .venv",
        "            ~/.cache/labgrade",
        "          key: labgrade-${{ runner.os }}-py" + options.python_version
        + "-${{ hashFiles('requirements/**', 'pyproject.toml', 'scripts/setup*.sh', "
          "'labgrade/runtime/tinymodels.py') }}",
    ]


def render(lab_ids: list[str], options: WorkflowOptions, fallbacks: dict[str, dict]) -> str:
    """The workflow grading `lab_ids`; `fallbacks[lab]` is the Classroom result the
    reporter gets for a lab whose grading dies or never starts (outline.classroom_fallback:
    0 out of the lab's maximum, every item named)."""
    options.validate()
    if not lab_ids:
        raise DeliveryError("no labs to grade")
    missing = [lab for lab in lab_ids if not (fallbacks.get(lab) or {}).get("max_score")]
    if missing:
        raise DeliveryError(f"no fallback result with a maximum for {', '.join(missing)}")
    gpu = options.profile == "gpu"
    runs_on = ("[" + ", ".join(options.gpu_runner_labels) + "]") if gpu else options.cpu_runner
    timeout = options.timeout_minutes or (60 if gpu else 30)
    graders = PurePosixPath(options.graders_path)
    base = graders.parent.as_posix()
    src = ".graders" if base in ("", ".") else f".graders/{base}"
    fixtures = "fixtures" if base in ("", ".") else f"{base}/fixtures"
    sparse = [f"{graders.as_posix()}/{lab}" for lab in lab_ids]
    sparse += [f"{fixtures}/{lab}" for lab in lab_ids]
    if options.framework_from_graders:
        prefix = "" if src == ".graders" else base + "/"
        sparse += [prefix + p for p in ("labgrade", "scripts", "requirements")]
    ids = [step_id(lab) for lab in lab_ids]
    if len(set(ids)) != len(ids):
        raise DeliveryError(f"lab ids {lab_ids} give clashing step ids {ids}")

    lines = [
        "# Generated by `labgrade release`: edit the release options, not this file.",
        "# GitHub Classroom reads the result only from a workflow named \"Autograding Tests\"",
        "# with one job named run-autograding-tests (autograding-grading-reporter's README).",
        f"name: {WORKFLOW_NAME}",
        '"on":',
        "  push:",
        "  workflow_dispatch:",
        "  repository_dispatch:",
        "permissions:",
        "  checks: write",
        "  actions: read",
        "  contents: read",
        "jobs:",
        f"  {JOB_ID}:",
        f"    runs-on: {runs_on}",
        "    if: github.actor != 'github-classroom[bot]'",
        f"    timeout-minutes: {timeout}",
        "    steps:",
        "      - name: Check out the submission",
        "        uses: actions/checkout@v4",
        "      - name: Check out the hidden graders",
        "        uses: actions/checkout@v4",
        "        with:",
        f"          repository: {options.graders_repo}",
        f"          ref: {_q(options.graders_ref)}",
        f"          token: ${{{{ secrets.{options.token_secret} }}}}",
        "          path: .graders",
        "          persist-credentials: false",
        "          sparse-checkout: |",
        *[f"            {p}" for p in sparse],
        "      - name: Put the graders in place",
        "        shell: bash",
        "        run: |",
    ]
    install = ["set -euo pipefail",
               "# a submission's own graders/ never count: start from the private copy",
               "rm -rf graders && mkdir -p graders"]
    for lab in lab_ids:
        where = f".graders/{graders.as_posix()}/{lab}"
        install.append(f'test -d "{where}" || {{ echo "::error::{options.graders_repo} has no '
                       f'{graders.as_posix()}/{lab} at {options.graders_ref}"; exit 1; }}')
        install.append(f'cp -R "{where}" graders/')
        # grader data (prompt sets, model repositories); known-bad submissions stay out
        install.append(f'if [ -d ".graders/{fixtures}/{lab}" ]; then mkdir -p fixtures && '
                       f'rm -rf "fixtures/{lab}" && cp -R ".graders/{fixtures}/{lab}" fixtures/ '
                       f'&& rm -rf fixtures/{lab}/wrong_* fixtures/{lab}/attack_*; fi')
    if options.framework_from_graders:
        install += ["# grade with the course's own copy of the framework, not the submission's",
                    "for p in labgrade pyproject.toml Makefile scripts requirements; do",
                    f'  if [ -e "{src}/$p" ]; then rm -rf "$p"; cp -R "{src}/$p" "$p"; fi',
                    "done"]
    install.append("rm -rf .graders")
    lines += [_indent(line + "\n", 10).rstrip("\n") for line in install]
    if not gpu:
        lines += [
            "      - name: Set up Python",
            "        uses: actions/setup-python@v5",
            "        with:",
            f"          python-version: {_q(options.python_version)}",
            # restore and save separately: actions/cache alone saves only when the job
            # succeeds, and a job with less than full marks fails (the reporter's doing)
            "      - name: Restore the environment and the tiny models",
            "        id: labgradecache",
            "        uses: actions/cache/restore@v4",
            "        with:",
            *_cache_with(options),
        ]
    lines += [
        "      - name: Set up labgrade",
        "        shell: bash",
    ]
    if not gpu and options.extra_index_url:
        lines += ["        env:",
                  f"          PIP_EXTRA_INDEX_URL: {_q(options.extra_index_url)}"]
    lines += [f"        run: {options.setup_command}"]
    if not gpu:
        lines += [
            "      - name: Save the environment and the tiny models",
            "        if: steps.labgradecache.outputs.cache-hit != 'true'",
            "        uses: actions/cache/save@v4",
            "        with:",
            *_cache_with(options),
        ]

    for lab, sid in zip(lab_ids, ids):
        fallback = classroom.encode(fallbacks[lab])
        grade = (f'GITHUB_OUTPUT="$own" {options.python} -m pytest labs/{lab} --grade '
                 f'--profile {options.profile} --classroom-output --report-dir "$reports"')
        script = [
            "# the result comes only from this grading's own output, never from a file in the",
            "# checkout (student code can write there): the plugin appends result=<base64> to a",
            "# fresh file of this step, and only a grading that ended normally (exit 0: all",
            "# passed, 1: items failed, 2: interrupted, reports written) counts",
            'reports="$RUNNER_TEMP/labgrade"',
            'own=$(mktemp "$RUNNER_TEMP/labgrade-result.XXXXXX")',
            "set +e",
            grade,
            "code=$?",
            "set -e",
            'line=$(tail -n 1 "$own")',
            'case "$code" in 0|1|2) ;; *) line="" ;; esac',
            "# a grading that died (or never started) gets 0 out of the lab's maximum: "
            f"{fallbacks[lab]['max_score']:g} points",
            f"fallback='{fallback}'",
            "# overwrite, not append: whatever else reached $GITHUB_OUTPUT is dropped",
            "if printf '%s' \"$line\" | grep -Eq '^result=[A-Za-z0-9+/]+={0,2}$'; then",
            "  printf '%s\\n' \"$line\" > \"$GITHUB_OUTPUT\"",
            "else",
            f'  echo "::error title=labgrade::grading {lab} ended without a result (exit code '
            '$code); 0 points are reported; see the log above"',
            "  printf 'result=%s\\n' \"$fallback\" > \"$GITHUB_OUTPUT\"",
            "  exit 1",
            "fi",
        ]
        lines += [
            f"      - name: Grade {lab}",
            f"        id: {sid}",
            "        if: always()",
            "        shell: bash",
        ]
        if options.run_budget_seconds:
            lines += ["        env:",
                      f"          LABGRADE_RUN_BUDGET: {_q(str(options.run_budget_seconds))}"]
        lines += ["        run: |", *[_indent(s + "\n", 10).rstrip("\n") for s in script]]
    lines += [
        "      - name: Keep the HTML reports",
        "        if: always()",
        "        uses: actions/upload-artifact@v4",
        "        with:",
        "          name: labgrade-report",
        "          path: ${{ runner.temp }}/labgrade/*/report.html",
        "          if-no-files-found: ignore",
        "      - name: Autograding Reporter",
        "        if: always()",
        f"        uses: {REPORTER}",
        "        env:",
        *[f"          {sid.upper()}_RESULTS: \"${{{{ steps.{sid}.outputs.result || "
          f"'{classroom.encode(fallbacks[lab])}' }}}}\""
          for lab, sid in zip(lab_ids, ids)],
        "        with:",
        f"          runners: {','.join(ids)}",
    ]
    return "\n".join(lines) + "\n"
