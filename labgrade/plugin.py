"""The pytest plugin: `pytest labs/<id> --grade` grades a lab with its hidden graders.

Shape (after pytest's own junitxml plugin): options in one group; `pytest_configure` builds
one `GradingSession` kept in the config stash; the hooks are that object's methods.

Under --grade, the lab paths on the command line are swapped for `graders/<id>` before
pytest loads any conftest, so a submission's own conftest.py is never imported.

Per item, the plugin keeps in `item.stash`: the checked markers (`labgrade.markers.ItemSpec`,
read at collection: a bad marker is a collection error), why the plugin withheld the item
if it did (`Withheld`: out of scope, run budget spent, run voided), and the item's
`ScoreCard` (partial credit and measurements).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
import traceback
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

import labgrade
from labgrade import integrity, isolation, labs, markers, profiles
from labgrade.reports import classroom, console, write_all
from labgrade.reports.limits import cap
from labgrade.runtime import process
from labgrade.submission import TrustedCodeError
from labgrade.markers import ItemSpec, MarkerError
from labgrade.scoring import (Fail, GraderError, ItemResult, LabResult, Status, Ungradable,
                              round_score, status_for_fraction)


@dataclass(frozen=True)
class LabRequest:
    lab: labs.Lab
    submission_dir: Path


_REQUESTS = pytest.StashKey[list[LabRequest]]()  # set on the early config, read in configure


# ----------------------------------------------------------------------------- options
def _hub_model(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not (sep and key.strip() and value.strip()):
        raise argparse.ArgumentTypeError(f"--hub-model takes KEY=ID, got {text!r}")
    return key.strip(), value.strip()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("labgrade", "labgrade: grading labs")
    group.addoption("--grade", action="store_true",
                    help="grade the lab(s) named on the command line with their hidden graders")
    group.addoption("--solution", action="store_true",
                    help="with --grade: grade solutions/<id> (instructors)")
    group.addoption("--starter", action="store_true",
                    help="with --grade: grade the pristine starter labs/<id> of the course repo")
    group.addoption("--submission", metavar="DIR", default=None,
                    help="with --grade: grade DIR, laid out like labs/<id>")
    group.addoption("--profile", default=os.environ.get("LABGRADE_PROFILE", "auto"),
                    choices=("auto",) + profiles.PROFILES,
                    help="cpu, gpu, or auto (gpu when CUDA and a CUDA vLLM are present)")
    group.addoption("--models", default=os.environ.get("LABGRADE_MODELS", "tiny"),
                    choices=("tiny", "hub"),
                    help="tiny: labgrade's locally built models (default); hub: the course's "
                         "real models named in each profile's [hub] table (needs a model hub)")
    group.addoption("--hub-model", metavar="KEY=ID", action="append", type=_hub_model,
                    default=[_hub_model(v) for v in
                             os.environ.get("LABGRADE_HUB_MODELS", "").split(",") if v],
                    help="with --models hub: set the [hub] table's KEY (model, draft_model, "
                         "served_model_name) to ID, e.g. model=Qwen/Qwen2.5-0.5B-Instruct; "
                         "repeatable (env LABGRADE_HUB_MODELS=KEY=ID,KEY=ID)")
    group.addoption("--report-dir", metavar="DIR", default=None,
                    help="where reports go (default .labgrade/ under the rootdir)")
    group.addoption("--classroom-output", action="store_true",
                    help="print the base64 Classroom result (and add it to $GITHUB_OUTPUT)")
    group.addoption("--run-budget", metavar="SECONDS", type=float,
                    default=float(os.environ.get("LABGRADE_RUN_BUDGET", "0")) or None,
                    help="whole-run time budget; items not started by then are not run")
    group.addoption("--isolation", default=os.environ.get(isolation.ENV_VAR, "auto"),
                    choices=isolation.CHOICES,
                    help="how student code is confined: user (as root: a dedicated user), "
                         "bwrap (bubblewrap), none, or auto (the strongest available; "
                         f"also ${isolation.ENV_VAR})")


# ------------------------------------------------------------ swap labs for graders
@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, args: list[str]) -> None:
    ns = early_config.known_args_namespace
    if not getattr(ns, "grade", False):
        return
    root = early_config.rootpath
    invocation = early_config.invocation_params.dir
    given = list(ns.file_or_dir or [])
    if not given:
        raise pytest.UsageError("--grade needs a lab, e.g.  pytest labs/lab_2_1 --grade")
    requests: list[LabRequest] = []
    graders: list[str] = []
    for arg in given:
        lab_id = labs.lab_id_of(arg, root, invocation)
        if lab_id is None:
            raise pytest.UsageError(f"{arg!r} is not a lab: pass labs/<id> (e.g. labs/lab_2_1)")
        try:
            lab = labs.load_lab(root, lab_id)
        except labs.LabConfigError as exc:
            raise pytest.UsageError(str(exc)) from None
        requests.append(LabRequest(lab, _submission_dir(ns, lab, arg, invocation, len(given))))
        graders.append(str(lab.graders_dir))
    early_config.stash[_REQUESTS] = requests
    # rewrite in place: pytest re-parses `args` after this hook
    positional = set(given)
    args[:] = [a for a in args if a not in positional] + graders
    ns.file_or_dir = graders


def _submission_dir(ns, lab: labs.Lab, arg: str, invocation: Path, n_labs: int) -> Path:
    chosen = [m for m in ("solution", "starter") if getattr(ns, m, False)]
    if ns.submission:
        chosen.append("submission")
    if len(chosen) > 1:
        raise pytest.UsageError("choose one of --solution, --starter, --submission")
    if ns.solution:
        return lab.solution_dir
    if ns.starter:
        return lab.starter_dir
    if ns.submission:
        base = (invocation / ns.submission).resolve()
        nested = base / lab.id
        if n_labs > 1 or (nested.is_dir() and not any(base.glob("*.py"))):
            return nested
        return base
    path = (invocation / arg.split("::", 1)[0]).resolve()
    return path if path.is_dir() else path.parent


# -------------------------------------------------------------------- configure
_SESSION = pytest.StashKey["GradingSession"]()


def pytest_configure(config: pytest.Config) -> None:
    for line in markers.HELP.values():
        config.addinivalue_line("markers", line)
    if not config.getoption("grade"):
        if any(config.getoption(o) for o in ("solution", "starter", "submission")):
            raise pytest.UsageError("--solution/--starter/--submission need --grade")
        return
    try:
        profile = profiles.resolve(config.getoption("profile"))
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None
    session = GradingSession(config, config.stash.get(_REQUESTS, []), profile)
    config.stash[_SESSION] = session
    config.pluginmanager.register(session, "labgrade-session")
    # hidden grader source must not reach the student's terminal
    config.option.tbstyle = "no"
    config.option.reportchars = ""
    session.install_signal_handlers()


def pytest_unconfigure(config: pytest.Config) -> None:
    session = config.stash.get(_SESSION, None)
    if session is not None:
        session.close()
        config.pluginmanager.unregister(session)
    process.stop_all()


def grading_session(config: pytest.Config) -> "GradingSession":
    try:
        return config.stash[_SESSION]
    except KeyError:
        raise GraderError("grader fixtures need --grade") from None


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    if config.getoption("grade"):
        return
    if exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED:
        terminalreporter.write_line(
            "This lab has no public sanity tests. To grade it:  pytest labs/<id> --grade")


# -------------------------------------------------------------- the grading session
class GradingSession:
    def __init__(self, config: pytest.Config, requests: list[LabRequest], profile: str) -> None:
        self.config = config
        self.profile = profile
        self.models = config.getoption("models")
        self.hub_models = dict(config.getoption("hub_model") or [])
        self.mode = next((m for m in ("solution", "starter", "submission")
                          if config.getoption(m)), "grade")
        self.requests = {r.lab.id: r for r in requests}
        report_dir = config.getoption("report_dir")
        self.report_root = (Path(report_dir).resolve() if report_dir
                            else config.rootpath / ".labgrade")
        self.started_at = time.time()
        self.results: dict[str, ItemResult] = {}
        self.items: list[pytest.Item] = []
        self.interrupted = False
        self.contexts: dict[str, object] = {}  # lab id -> LabContext (labgrade.fixtures)
        self.phase_seconds: dict[str, dict[str, float]] = {}  # where a lab's time went
        self.run_budget: float | None = config.getoption("run_budget")
        self.all_items: list[pytest.Item] = []  # before -k/-m deselection
        self.marker_problems: list[str] = []  # grader items whose markers are wrong
        self.final_results: list[LabResult] = []
        self._closed = False
        self.subreaper = integrity.become_subreaper()
        self.tainted = self._config_in_submission()
        self.labgrade_dir = Path(labgrade.__file__).resolve().parent
        self.digests_at_start = self._environment_digests()
        self.submission_digests = {lab_id: integrity.tree_digest(r.submission_dir)
                                   for lab_id, r in self.requests.items()}
        try:
            self.isolation = isolation.configure(
                config.getoption("isolation"), course_root=config.rootpath,
                report_root=self.report_root,
                submissions=[r.submission_dir for r in self.requests.values()],
                run_dirs=[self.run_dir(lab_id) for lab_id in self.requests])
        except (RuntimeError, ValueError) as exc:
            raise pytest.UsageError(str(exc)) from None

    def _environment_digests(self) -> dict[str, str]:
        digests = {"labgrade": integrity.tree_digest(self.labgrade_dir)}
        for lab_id, request in self.requests.items():
            digests[f"graders/{lab_id}"] = integrity.tree_digest(request.lab.graders_dir)
        return digests

    def _config_in_submission(self) -> str | None:
        """A pytest config file inside the graded submission would steer this very run."""
        inipath = self.config.inipath
        if inipath is None:
            return None
        for request in self.requests.values():
            if request.submission_dir in Path(inipath).resolve().parents:
                return (f"your submission contains {Path(inipath).name}, a pytest configuration "
                        "file that changes how grading runs: remove it and grade again")
        return None

    # -- which lab an item belongs to
    def lab_of(self, item: pytest.Item) -> str:
        graders_root = self.config.rootpath / "graders"
        try:
            return Path(item.path).resolve().relative_to(graders_root.resolve()).parts[0]
        except ValueError:
            return "unknown"

    def run_dir(self, lab_id: str) -> Path:
        path = self.report_root / lab_id / "run"
        path.mkdir(parents=True, exist_ok=True)
        return path

    # -- signals: SIGTERM behaves like Ctrl-C so reports are still written
    def install_signal_handlers(self) -> None:
        def on_term(signum, frame):
            raise KeyboardInterrupt(f"received signal {signum}")
        try:
            signal.signal(signal.SIGTERM, on_term)
        except ValueError:  # not the main thread
            pass

    # -- collection
    @pytest.hookimpl(wrapper=True)
    def pytest_make_collect_report(self, collector: pytest.Collector):
        """Read every collected item's markers into its ItemSpec; a bad one turns the
        collection of its file into an error that names the test and the fix."""
        report = yield
        if not report.passed:
            return report
        problems = []
        for node in report.result:
            if isinstance(node, pytest.Item):
                try:
                    node.stash[ITEM_SPEC] = markers.read_spec(node)
                except MarkerError as exc:
                    problems.append(str(exc))
        if problems:
            self.marker_problems.extend(problems)
            report.outcome = "failed"
            report.longrepr = "\n".join(problems)
            report.result = []
        return report

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(self, session, config, items: list[pytest.Item]) -> None:
        self.all_items = list(items)

    @pytest.hookimpl(trylast=True, specname="pytest_collection_modifyitems")
    def pytest_collection_modifyitems_last(self, session, config,
                                           items: list[pytest.Item]) -> None:
        if self.tainted:
            # a config in the submission may have deselected items: grade them all as errors
            items[:] = list(self.all_items)
        for item in items:
            reason = self._out_of_scope(item)
            if reason:
                item.stash[WITHHELD] = Withheld(Status.OUT_OF_SCOPE, reason)
                item.add_marker(pytest.mark.skip(reason=reason))
        self.items = list(items)

    def _out_of_scope(self, item: pytest.Item) -> str | None:
        """Why an item is not graded under this profile: a `profiles` marker that leaves the
        profile out, or the profile's `not_graded` table in lab.toml (item name -> why)."""
        spec = item_spec(item)
        if not spec.in_scope_for(self.profile):
            return (f"out of scope for the {self.profile} profile "
                    f"(graded under: {', '.join(spec.profiles)})")
        lab_id = self.lab_of(item)
        request = self.requests.get(lab_id) if lab_id else None
        if request is None:
            return None
        try:
            table = request.lab.settings(self.profile, self.models,
                                         self.hub_models).get("not_graded", {})
        except labs.LabConfigError:
            return None  # reported by the lab's fixtures, item by item
        why = table.get(getattr(item, "originalname", item.name))
        return f"out of scope for the {self.profile} profile: {why}" if why else None

    def in_scope(self, item: pytest.Item) -> bool:
        """Whether the item is graded under this run's profile (for fixtures deciding which
        services the selected items need)."""
        return self._out_of_scope(item) is None

    def pytest_collection_finish(self, session) -> None:
        # a results file exists from the start, in case the run dies
        self.write_reports(final=False)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        if self.tainted:
            withhold(item, Status.ERROR, self.tainted)
        if self.run_budget is not None and time.time() - self.started_at > self.run_budget:
            withhold(item, Status.NOT_RUN, f"the run's time budget of {self.run_budget:.0f} s "
                                           "was spent before this item started")

    # -- per-item budget (SIGALRM interrupts blocking waits in the main thread)
    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item):
        seconds = self.budget_of(item)
        if self.run_budget is not None:
            remaining = self.run_budget - (time.time() - self.started_at)
            seconds = max(1.0, min(seconds, remaining))

        def on_alarm(signum, frame):
            raise ItemTimeout(f"this item took longer than its {seconds:.0f} s budget and "
                              "was stopped; look for an endless loop or a call that never "
                              "returns in your code")
        previous = signal.signal(signal.SIGALRM, on_alarm)
        signal.setitimer(signal.ITIMER_REAL, seconds)
        try:
            return (yield)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)

    def budget_of(self, item: pytest.Item) -> float:
        """Seconds the item may run: its budget marker, else the lab's item_timeout."""
        budget = item_spec(item).budget
        if budget is not None:
            return budget
        request = self.requests.get(self.lab_of(item))
        return request.lab.item_timeout if request else 300.0

    # -- results
    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo):
        report = yield
        lab_id = self.lab_of(item)
        phases = self.phase_seconds.setdefault(lab_id, {"setup": 0.0, "call": 0.0,
                                                         "teardown": 0.0})
        phases[call.when] = round(phases[call.when] + call.duration, 3)
        if call.when == "call" or (call.when == "setup" and report.outcome != "passed"):
            self.results[item.nodeid] = _capped(self.item_result(item, call, report))
            self.write_reports(final=False)  # a crash of the run keeps what was graded
        elif call.when == "teardown" and report.failed and item.nodeid in self.results:
            prior = self.results[item.nodeid]
            if prior.status is Status.PASSED:  # a teardown failure is the grader's problem
                self.results[item.nodeid] = replace(
                    prior, hidden_detail=str(report.longrepr)[-4000:])
        return report

    def item_result(self, item: pytest.Item, call: pytest.CallInfo, report) -> ItemResult:
        spec = item_spec(item)
        points = spec.points
        path, line_no, _ = item.location
        base = dict(nodeid=item.nodeid, name=item.name, max_score=points,
                    visibility=spec.visibility, duration=call.duration, filename=path,
                    line_no=(line_no or 0) + 1)
        card = item.stash.get(SCORE_KEY, None)
        measured = dict(card.measured) if card else {}
        if report.skipped:
            withheld = item.stash.get(WITHHELD, None)
            if withheld is not None:
                return ItemResult(status=withheld.status, score=0.0, message=withheld.message,
                                  **base)
            # a grader's own pytest.skip: a runtime the item needs is absent
            return ItemResult(status=Status.UNGRADABLE, score=0.0,
                              message=_skip_reason(report), measured=measured, **base)
        if report.passed:
            fraction = card.fraction if card and card.fraction is not None else 1.0
            message = card.message if card else ""
            return ItemResult(status=status_for_fraction(fraction),
                              score=round_score(points, fraction), message=message,
                              measured=measured, **base)
        exc = call.excinfo.value if call.excinfo else None
        if isinstance(exc, Ungradable):
            return ItemResult(status=Status.UNGRADABLE, score=0.0, message=str(exc),
                              measured=measured, **base)
        if isinstance(exc, (Fail, ItemTimeout)) or (
                isinstance(exc, AssertionError) and call.when == "call"):
            return ItemResult(status=Status.FAILED, score=0.0, message=_student_message(exc),
                              measured=measured, **base)
        where = "setting up" if call.when == "setup" else "running"
        detail = "".join(traceback.format_exception(exc)) if exc else str(report.longrepr)
        if isinstance(exc, TrustedCodeError) and exc.worker_traceback:
            detail += f"\nin the worker:\n{exc.worker_traceback}"
        return ItemResult(status=Status.ERROR, score=0.0,
                          message=f"grader error while {where} this item "
                                  f"({type(exc).__name__}): not your fault; tell the course "
                                  "staff",
                          measured=measured, hidden_detail=detail[-6000:], **base)

    # -- reports
    def lab_result(self, lab_id: str, *, final: bool) -> LabResult:
        request = self.requests[lab_id]
        items = []
        for item in self.items:
            if self.lab_of(item) != lab_id:
                continue
            result = self.results.get(item.nodeid)
            if result is None:
                path, line_no, _ = item.location
                spec = item_spec(item)
                withheld = item.stash.get(WITHHELD, None)
                scope = withheld.message if withheld and withheld.status is \
                    Status.OUT_OF_SCOPE else None
                result = ItemResult(
                    nodeid=item.nodeid, name=item.name,
                    status=Status.OUT_OF_SCOPE if scope else Status.NOT_RUN,
                    score=0.0, max_score=spec.points, visibility=spec.visibility,
                    message=scope or ("grading stopped before this item ran" if final
                                      else "grading in progress"),
                    filename=path, line_no=(line_no or 0) + 1)
            items.append(result)
        if final and self.tainted:
            items = [replace(i, status=Status.ERROR, score=0.0, message=self.tainted)
                     if i.in_scope else i for i in items]
        digests = {"submission": self.submission_digests[lab_id],
                   "graders": self.digests_at_start[f"graders/{lab_id}"],
                   "labgrade": self.digests_at_start["labgrade"]}
        return LabResult(lab_id=lab_id, title=request.lab.title, profile=self.profile,
                         mode=self.mode,
                         submission=str(request.submission_dir), items=tuple(items),
                         digests=digests,
                         started_at=self.started_at, finished_at=time.time(),
                         interrupted=self.interrupted or not final,
                         environment={"python": sys.version.split()[0],
                                      "pytest": pytest.__version__,
                                      "models": self.models,
                                      **_host_overlay(request.lab, self.profile),
                                      **({"hub_models": self.hub_models}
                                         if self.models == "hub" else {}),
                                      "phase_seconds": self.phase_seconds.get(lab_id, {}),
                                      "isolation": self.isolation.describe(),
                                      **self._gpu_memory(lab_id),
                                      **self._lab_environment(lab_id)})

    def _lab_environment(self, lab_id: str) -> dict:
        """What the lab's graders recorded in `lab.environment` (e.g. tool versions)."""
        return dict(getattr(self.contexts.get(lab_id), "environment", None) or {})

    def _gpu_memory(self, lab_id: str) -> dict:
        """GPU memory around the lab's processes (only on a host with an NVIDIA GPU)."""
        context = self.contexts.get(lab_id)
        ledger = getattr(context, "gpu_ledger", None)
        return {"gpu_memory": ledger.events} if ledger is not None else {}

    def write_reports(self, *, final: bool) -> list[LabResult]:
        results = []
        for lab_id in self.requests:
            result = self.lab_result(lab_id, final=final)
            write_all(result, self.report_root / lab_id)
            results.append(result)
        return results

    def pytest_keyboard_interrupt(self, excinfo) -> None:
        self.interrupted = True

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session, exitstatus) -> None:
        if exitstatus == pytest.ExitCode.INTERRUPTED:
            self.interrupted = True
        self.close()
        changed = [name for name, digest in self._environment_digests().items()
                   if digest != self.digests_at_start[name]]
        if changed and not self.tainted:
            self.tainted = (f"the grading environment ({', '.join(changed)}) was modified "
                            "during this run; no score is given. Student code must not write "
                            "outside its own folder.")
        self.final_results = self.write_reports(final=True)

    def pytest_terminal_summary(self, terminalreporter) -> None:
        tr = terminalreporter
        if self.marker_problems:
            tr.section("labgrade: grader items with bad markers (fix the graders)", sep="=")
            for problem in self.marker_problems:
                tr.write_line(problem)
        for result in self.final_results:
            tr.section(f"labgrade: {result.lab_id}", sep="=")
            for line in console.render(result).splitlines():
                tr.write_line(line)
            tr.write_line(f"  reports: {self.report_root / result.lab_id}")
            if self.config.getoption("classroom_output"):
                encoded = classroom.encode(classroom.to_dict(result))
                tr.write_line(f"classroom result: {encoded}")
        github_output = os.environ.get("GITHUB_OUTPUT")
        if self.config.getoption("classroom_output") and github_output and self.final_results:
            with open(github_output, "a") as fh:  # one line per call, however many labs
                fh.write(classroom.github_output_line(self.final_results))

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for context in list(self.contexts.values()):
            try:
                context.close()
            except Exception:  # noqa: BLE001 - teardown must go on for the others
                traceback.print_exc()
        process.stop_all()
        integrity.kill_descendants()  # anything daemonized that escaped its process group
        isolation.deactivate()


def _host_overlay(lab: labs.Lab, profile: str) -> dict:
    """grade.json names the host overlay (labgrade calibrate) whose thresholds graded it."""
    found = lab.profiles.get(profile)
    return {"host_overlay": found.host_overlay} if found and found.host_overlay else {}


def _capped(result: ItemResult) -> ItemResult:
    """Messages are bounded where they are made (a submission can raise or print megabytes,
    or echo what it read): every report, the console and grade.json get the capped text."""
    return replace(result, message=cap(result.message),
                   hidden_detail=cap(result.hidden_detail, HIDDEN_DETAIL_BYTES))


HIDDEN_DETAIL_BYTES = 16 * 1024


class ItemTimeout(Exception):
    pass


@dataclass(frozen=True)
class Withheld:
    """Why the plugin skipped an item instead of running it (recorded before the skip)."""
    status: Status   # OUT_OF_SCOPE, NOT_RUN (the run's budget was spent), ERROR (run voided)
    message: str


ITEM_SPEC = pytest.StashKey[ItemSpec]()
WITHHELD = pytest.StashKey[Withheld]()


def item_spec(item: pytest.Item) -> ItemSpec:
    """The item's checked markers (read at collection)."""
    spec = item.stash.get(ITEM_SPEC, None)
    if spec is None:  # an item that did not come through collection's reports
        try:
            spec = item.stash[ITEM_SPEC] = markers.read_spec(item)
        except MarkerError as exc:
            raise GraderError(str(exc)) from None
    return spec


def withhold(item: pytest.Item, status: Status, message: str) -> None:
    """Skip the item now, and report it as `status` with `message`."""
    item.stash[WITHHELD] = Withheld(status, message)
    pytest.skip(message)


# --------------------------------------------------------------------- helpers
class ScoreCard:
    """What a test tells the plugin beyond pass/fail: a fraction, a message, measurements."""

    def __init__(self) -> None:
        self.fraction: float | None = None
        self.message = ""
        self.measured: dict = {}

    def set(self, fraction: float, message: str = "") -> None:
        if not 0.0 <= fraction <= 1.0:
            raise GraderError(f"score fraction must be within 0..1, got {fraction}")
        self.fraction = fraction
        self.message = message

    def measure(self, **values: object) -> None:
        self.measured.update(values)


SCORE_KEY = pytest.StashKey[ScoreCard]()


def _skip_reason(report) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        reason = longrepr[2]
        return reason[len("Skipped: "):] if reason.startswith("Skipped: ") else reason
    return str(longrepr)


def _student_message(exc: BaseException) -> str:
    text = str(exc)
    # pytest's assertion rewriting appends "assert <expr>" (grader source): cut it off
    cut = text.find("\nassert ")
    if cut != -1:
        text = text[:cut]
    if text.startswith("assert "):
        text = "a check failed"
    return text.strip() or "a check failed"


@pytest.fixture
def score(request: pytest.FixtureRequest) -> ScoreCard:
    """Partial credit and measurements for the current item (see docs/writing-graders.md)."""
    card = ScoreCard()
    request.node.stash[SCORE_KEY] = card
    return card
