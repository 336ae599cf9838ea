"""`labgrade`: course-staff commands around grading.

    labgrade release <lab|all> --out DIR --graders-repo OWNER/NAME [...]
    labgrade gradescope <lab> --out FILE.zip [--profile cpu]
    labgrade batch SUBMISSIONS_DIR --lab ID [-j N] [--out DIR] [--ray [ADDRESS]]
    labgrade overlay <lab> <wrong_name> --out DIR
    labgrade audit <lab> [--runs N] [-j N] [--only-items] [--max-mutants N] [--out DIR]
    labgrade calibrate <lab> --profile P [--runs N] [--fraction F] [--margin M]

Grading itself is `pytest labs/<id> --grade` (see README.md); these commands package and
scale it. Every command takes --root (the course repository; default: the nearest folder
at or above the current one holding labs/ and graders/).
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from labgrade.delivery import DeliveryError, find_course_root


def _course_root(args) -> Path:
    return Path(args.root).resolve() if args.root else find_course_root()


# --------------------------------------------------------------------- release
def cmd_release(args) -> int:
    from labgrade.delivery import release, workflow
    root = _course_root(args)
    options = None
    if not args.no_workflow:
        if not args.graders_repo:
            raise DeliveryError(
                "the Classroom workflow needs the private repository that holds the graders: "
                "pass --graders-repo OWNER/NAME (and --token-secret NAME, the repository "
                "secret with a token that can read it), or --no-workflow")
        labels = tuple(x.strip() for x in args.gpu_runner_labels.split(",") if x.strip())
        options = workflow.WorkflowOptions(
            graders_repo=args.graders_repo, token_secret=args.token_secret,
            graders_ref=args.graders_ref, graders_path=args.graders_path,
            profile=args.profile, gpu_runner_labels=labels, cpu_runner=args.runner,
            setup_command=args.setup_command, python=args.python,
            timeout_minutes=args.timeout_minutes,
            framework_from_graders=not args.framework_from_submission,
            run_budget_seconds=args.run_budget)
    files = release.release(root, args.lab, Path(args.out), options, force=args.force,
                            allow_identical=args.allow_identical_to_solution)
    digest = release.tree_digest(Path(args.out))
    print(f"released {args.lab} from {root} -> {args.out}: {len(files)} files, "
          f"sha256 {digest[:16]}")
    if options is not None:
        print(f"  workflow: {workflow.WORKFLOW_PATH} (graders from {options.graders_repo}@"
              f"{options.graders_ref}, secret {options.token_secret}, "
              f"{options.profile} profile)")
    return 0


# ------------------------------------------------------------------ gradescope
def cmd_gradescope(args) -> int:
    from labgrade.delivery import gradescope
    root = _course_root(args)
    out = gradescope.build(root, args.lab, Path(args.out), profile=args.profile,
                           timeout_minutes=args.timeout_minutes)
    print(f"gradescope autograder for {args.lab} ({args.profile} profile) -> {out} "
          f"({out.stat().st_size} bytes)")
    print("\n".join(gradescope.settings(root, args.lab, args.timeout_minutes).lines()))
    return 0


# ----------------------------------------------------------------------- batch
def _ray_resources(pairs: list[str]) -> dict[str, float]:
    out = {}
    for pair in pairs:
        name, _, amount = pair.partition("=")
        try:
            out[name.strip()] = float(amount)
        except ValueError:
            raise DeliveryError(f"--ray-resource {pair!r}: give NAME=AMOUNT, e.g. grader=1") \
                from None
    return out


def cmd_batch(args) -> int:
    from labgrade.delivery import batch
    root = _course_root(args)
    plan = batch.make_plan(root, args.lab, profile=args.profile, timeout=args.timeout,
                           memory_gib=args.memory_gib, cpus=args.cpus, gpus=args.gpus)
    use_ray = args.ray is not None
    jobs = args.jobs or (None if use_ray else batch.default_jobs(plan))
    out = Path(args.out or f"batch-{args.lab}")
    where = ("Ray" + (f" at {args.ray}" if args.ray else " (local instance)")) if use_ray \
        else f"{jobs} local process(es)"
    print(f"grading {args.lab} ({args.profile} profile) on {where}; about "
          f"{plan.memory_bytes / batch.GiB:.1f} GiB and {plan.cpus:g} core(s) per run",
          flush=True)

    def progress(o):
        score = (f"{o.grade['score']:g}/{o.grade['max_score']:g}" if o.grade else "-")
        print(f"  {o.name:<30} {score:>10}  {o.outcome:<9} {o.wall_seconds:6.1f} s", flush=True)

    try:
        outcomes, path, wall = batch.batch(Path(args.submissions), plan, out, jobs=jobs,
                                           ray_address=args.ray or None, use_ray=use_ray,
                                           ray_resources=_ray_resources(args.ray_resource),
                                           progress=progress)
    except KeyboardInterrupt:
        batch.stop_all()
        print("interrupted: running gradings were stopped", file=sys.stderr)
        return 130
    bad = [o for o in outcomes if o.outcome != "ok"]
    print(f"{len(outcomes)} submissions in {wall:.1f} s -> {path}"
          + (f"; {len(bad)} did not grade cleanly: " + ", ".join(
              f"{o.name} ({o.outcome})" for o in bad) if bad else ""))
    return 1 if bad else 0


# --------------------------------------------------------------------- overlay
def cmd_overlay(args) -> int:
    from labgrade.overlay import OverlayError, materialise, overlay
    root = _course_root(args)
    try:
        item = overlay(root, args.lab, args.wrong_name)
        out = materialise(item, Path(args.out))
    except OverlayError as exc:
        print(f"labgrade overlay: {exc}", file=sys.stderr)
        return 2
    changed = ", ".join(str(p) for p in item.changed_files())
    print(f"{item.lab}/{item.name} -> {out}: solutions/{item.lab} with {changed} on top\n"
          f"  grade it: pytest labs/{item.lab} --grade --submission {out}")
    return 0


# ----------------------------------------------------------------------- audit
def cmd_audit(args) -> int:
    from labgrade.audit import report
    from labgrade.audit.run import AuditOptions, audit
    root = _course_root(args)
    out = Path(args.out or f".labgrade/audit/{args.lab}").resolve()
    options = AuditOptions(root=root, lab=args.lab, out=out, profile=args.profile,
                           runs=args.runs, jobs=args.jobs, mutants=not args.no_mutants,
                           only_items=args.only_items, max_mutants=args.max_mutants,
                           seed=args.seed, timeout=args.timeout, select=args.select,
                           files=tuple(args.files))
    def on_term(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)
    try:
        data = audit(options)
    except KeyboardInterrupt:  # the running gradings were stopped (labgrade.audit.run)
        print("interrupted: running gradings were stopped", file=sys.stderr)
        return 130
    except RuntimeError as exc:
        print(f"labgrade audit: {exc}", file=sys.stderr)
        return 2
    json_path, html_path = report.write(data, out)
    print(report.text(data))
    print(f"-> {json_path}\n-> {html_path}")
    weak = (data["items_no_wrong_fails"] or data["starter"]["score"]
            or any(not m["killed"] for m in data["mutants"]))
    return 1 if weak else 0


def _baselines(pairs: list[str]) -> dict[str, float]:
    out = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        try:
            out[key.strip()] = float(value)
        except ValueError:
            raise DeliveryError(f"--baseline {pair!r}: give CURVE_KEY=NUMBER, e.g. "
                                "ttft_speedup=1.0") from None
    return out


def cmd_calibrate(args) -> int:
    from labgrade.audit.calibrate import CalibrationError, calibrate
    root = _course_root(args)
    work = Path(args.work or f".labgrade/calibrate/{args.lab}-{args.profile}").resolve()
    print(f"calibrating {args.lab} ({args.profile} profile): {args.runs} reference runs",
          flush=True)
    try:
        path, summary = calibrate(root, args.lab, args.profile, runs=args.runs,
                                  fraction=args.fraction, margin=args.margin,
                                  baselines=_baselines(args.baseline),
                                  out=Path(args.out) if args.out else None, work=work,
                                  select=args.select,
                                  progress=lambda line: print(line, flush=True))
    except CalibrationError as exc:
        print(f"labgrade calibrate: {exc}", file=sys.stderr)
        return 2
    for c in summary["curves"]:
        change = ", ".join(f"{k} = {v:g}" for k, v in c["settings"].items())
        print(f"  {c['key']}: reference median {c['median']:g} (sd {c['stdev']:g}); "
              f"published zero/full {c['published']['zero_at']:g}/"
              f"{c['published']['full_at']:g} -> {change or c.get('skipped', '')}")
    print(f"-> {path} (graders read it from there; delete it to grade with the published "
          "thresholds)")
    return 0


# ------------------------------------------------------------------------ main
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="labgrade", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p):
        p.add_argument("--root", help="the course repository (default: found from the "
                                      "current folder)")

    p = sub.add_parser("release", help="build the student template repository",
                       description="Starters, READMEs, public checks, the framework and a "
                                   "GitHub Classroom workflow; never graders, solutions or "
                                   "fixtures. Same input, same bytes.")
    p.add_argument("lab", help="a lab id (lab_2_1) or 'all'")
    p.add_argument("--out", required=True, help="output folder (a .git inside is kept)")
    p.add_argument("--force", action="store_true", help="replace a non-empty --out")
    p.add_argument("--graders-repo", metavar="OWNER/NAME",
                   help="private repository holding graders/<id>/ (and the framework)")
    p.add_argument("--token-secret", default="GRADERS_TOKEN",
                   help="repository secret with a token that can read it (default "
                        "GRADERS_TOKEN)")
    p.add_argument("--graders-ref", default="main", help="branch or tag (default main)")
    p.add_argument("--graders-path", default="graders",
                   help="folder of the lab suites in that repository (default graders)")
    p.add_argument("--profile", choices=("cpu", "gpu"), default="cpu",
                   help="cpu: GitHub-hosted runner; gpu: a self-hosted GPU runner")
    p.add_argument("--gpu-runner-labels", default="self-hosted,gpu",
                   help="runs-on labels for the gpu profile (comma-separated; default "
                        "self-hosted,gpu)")
    p.add_argument("--runner", default="ubuntu-latest", help="runner for the cpu profile")
    p.add_argument("--setup-command", default="make setup", help="how the runner sets up")
    p.add_argument("--python", default=".venv/bin/python",
                   help="interpreter that grades (default .venv/bin/python)")
    p.add_argument("--timeout-minutes", type=int, default=0,
                   help="job limit (default 30 cpu, 60 gpu)")
    p.add_argument("--run-budget", type=int, default=0, metavar="SECONDS",
                   help="LABGRADE_RUN_BUDGET for the grading step (default unset)")
    p.add_argument("--framework-from-submission", action="store_true",
                   help="grade with the student's copy of labgrade/ instead of the private "
                        "repository's (not recommended)")
    p.add_argument("--no-workflow", action="store_true", help="leave out the workflow")
    p.add_argument("--allow-identical-to-solution", action="store_true",
                   help="release even if a starter file equals its solution")
    common(p)
    p.set_defaults(func=cmd_release)

    p = sub.add_parser("gradescope", help="build a Gradescope autograder zip for one lab")
    p.add_argument("lab")
    p.add_argument("--out", required=True, help="the zip to write")
    p.add_argument("--profile", choices=("cpu", "gpu", "auto"), default="cpu")
    p.add_argument("--timeout-minutes", type=int, default=None,
                   help="the autograder timeout you will set in Gradescope (default: from "
                        "lab.toml [resources] minutes, at least 10)")
    common(p)
    p.set_defaults(func=cmd_gradescope)

    p = sub.add_parser("batch", help="grade many submissions in parallel",
                       description="Each sub-folder of SUBMISSIONS is one submission, graded "
                                   "by its own pytest process; OUT/<name>/ gets its reports "
                                   "and OUT/gradebook.csv one row each.")
    p.add_argument("submissions", help="folder of submission folders")
    p.add_argument("--lab", required=True)
    p.add_argument("-j", "--jobs", type=int, default=0,
                   help="parallel gradings (default: what cores and memory allow)")
    p.add_argument("--out", default=None, help="output folder (default batch-<lab>)")
    p.add_argument("--profile", choices=("cpu", "gpu"), default="cpu")
    p.add_argument("--timeout", type=float, default=None,
                   help="seconds per submission (default lab.toml [resources] minutes, or 30 min)")
    p.add_argument("--memory-gib", type=float, default=None,
                   help="memory per run (default: the lab's estimate)")
    p.add_argument("--cpus", type=float, default=None, help="cores per run (default 1)")
    p.add_argument("--gpus", type=float, default=None,
                   help="GPUs per run (default 1 for gpu, else 0)")
    p.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                   help="run on Ray: a cluster address, or none to start a local instance")
    p.add_argument("--ray-resource", action="append", default=[], metavar="NAME=AMOUNT",
                   help="a custom Ray node resource each grading needs (repeatable), e.g. "
                        "grader=1 to run only on nodes started with --resources "
                        "'{\"grader\": N}'")
    common(p)
    p.set_defaults(func=cmd_batch)

    p = sub.add_parser("overlay", help="write out a known-wrong submission (an overlay)",
                       description="fixtures/<lab>/<wrong_name>/ holds only the files it "
                                   "changes; OUT gets solutions/<lab>/ with them on top, "
                                   "ready for pytest labs/<lab> --grade --submission OUT.")
    p.add_argument("lab")
    p.add_argument("wrong_name", help="a folder of fixtures/<lab>/, e.g. wrong_kv_gqa")
    p.add_argument("--out", required=True, help="output folder (must not exist or be empty)")
    common(p)
    p.set_defaults(func=cmd_overlay)

    p = sub.add_parser("audit", help="how many plausible mistakes a lab's graders catch",
                       description="Grades the solution --runs times (score spread, curve "
                                   "headroom), the starter, every fixtures/<lab>/wrong_* "
                                   "overlay and mutants of the solution's Python files; "
                                   "prints an item x submission matrix, the mutation score "
                                   "and the surviving mutants; writes audit.json and "
                                   "audit.html. Exit 1 when something slips through.")
    p.add_argument("lab")
    p.add_argument("--profile", choices=("cpu", "gpu"), default="cpu")
    p.add_argument("--runs", type=int, default=3, help="solution gradings (default 3)")
    p.add_argument("-j", "--jobs", type=int, default=1, help="parallel gradings (default 1)")
    p.add_argument("--only-items", action="store_true",
                   help="grade a mutant only on the items that reach the mutated function "
                        "(from a traced grading of the solution)")
    p.add_argument("--max-mutants", type=int, default=None,
                   help="grade a seeded random sample of this many mutants")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--select", default=None, metavar="EXPR",
                   help="a pytest -k expression every grading is limited to (an audit of "
                        "part of a lab)")
    p.add_argument("--files", nargs="+", default=[], metavar="FILE",
                   help="mutate only these student files (default: every .py of lab.toml "
                        "files)")
    p.add_argument("--no-mutants", action="store_true", help="known-wrongs only")
    p.add_argument("--timeout", type=float, default=1800, help="seconds per grading")
    p.add_argument("--out", default=None, help="output folder (default .labgrade/audit/<lab>)")
    common(p)
    p.set_defaults(func=cmd_audit)

    p = sub.add_parser("calibrate", help="thresholds for this host from the reference",
                       description="Grades the reference solution --runs times on this host "
                                   "and writes a host overlay of the profile: each curve's "
                                   "full marks at --fraction of the reference's median, zero "
                                   "at the baseline + --margin, the measurements beside them.")
    p.add_argument("lab")
    p.add_argument("--profile", choices=("cpu", "gpu"), required=True)
    p.add_argument("--runs", type=int, default=5, help="reference gradings (default 5)")
    p.add_argument("--fraction", type=float, default=0.8,
                   help="full marks at this fraction of the reference's median (default 0.8)")
    p.add_argument("--margin", type=float, default=0.1,
                   help="zero marks at the baseline plus this (default 0.1)")
    p.add_argument("--baseline", action="append", default=[], metavar="CURVE_KEY=VALUE",
                   help="what no optimisation measures for a curve (default 1.0 for a "
                        "side-by-side ratio, else 0)")
    p.add_argument("--out", default=None,
                   help="write the overlay here instead of where graders look for it")
    p.add_argument("--work", default=None, help="folder for the reference runs' reports")
    p.add_argument("--select", default=None, metavar="EXPR",
                   help="a pytest -k expression: grade only the curve items to calibrate")
    common(p)
    p.set_defaults(func=cmd_calibrate)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except DeliveryError as exc:
        print(f"labgrade {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
