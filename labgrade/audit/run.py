"""`labgrade audit <lab>`: how much a lab's graders can tell apart.

Grades, each in a grading of its own (labgrade.audit.grading):
- the reference solution `runs` times: per-item score spread, and each curve's headroom
  (its measurement's distance from the thresholds in units of the spread across runs);
- the untouched starter;
- every known-wrong overlay (fixtures/<lab>/wrong_*);
- mutants of the solution's student-facing Python files (labgrade.audit.mutate), each with
  only the items that can reach the mutated function when `only_items` (labgrade.audit.callmap).

A submission "loses" an item when it scores below the lowest score the solution got on it
over the runs (so noise in a curve item is not counted as a kill). A mutant is killed when it
loses an item or its grading breaks. Equivalent mutants are not graded: those that compile to
the solution's own bytecode, and those listed in fixtures/<lab>/equivalent_mutants.toml
(`"<mutant id>" = "why it behaves like the solution"`).
"""

from __future__ import annotations

import random
import shutil
import statistics
import sys
import time
import tomllib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from labgrade.audit import callmap, mutate
from labgrade.audit.grading import Graded, grade, stop_all
from labgrade.labs import load_lab
from labgrade.overlay import PREFIX, materialise, overlay

EQUIVALENT_LIST = "equivalent_mutants.toml"
NOISE = 1e-6


@dataclass(frozen=True)
class AuditOptions:
    root: Path
    lab: str
    out: Path
    profile: str = "cpu"
    runs: int = 3
    jobs: int = 1
    mutants: bool = True
    only_items: bool = False
    max_mutants: int | None = None  # a random sample (seeded) when the lab has more
    select: str | None = None       # a pytest -k expression applied to every grading
    files: tuple[str, ...] = ()     # mutate only these student files (default: all)
    seed: int = 0
    timeout: float = 1800.0


@dataclass(frozen=True)
class Job:
    label: str
    kind: str               # solution | starter | wrong | mutant
    submission: Path
    items: list[str] | None = None
    trace: Path | None = None


def equivalent_list(root: Path, lab: str) -> dict[str, str]:
    path = root / "fixtures" / lab / EQUIVALENT_LIST
    if not path.is_file():
        return {}
    table = tomllib.loads(path.read_text())
    return {str(k): str(v) for k, v in table.items()}


def _grade_all(jobs: list[Job], options: AuditOptions, tick: Callable[[Graded], None]
               ) -> dict[str, Graded]:
    results: dict[str, Graded] = {}
    pool = ThreadPoolExecutor(max_workers=max(1, options.jobs))
    try:
        futures = {pool.submit(grade, options.root, options.lab, job.submission,
                               options.out / "reports" / job.label, profile=options.profile,
                               label=job.label, items=job.items, select=options.select,
                               timeout=options.timeout,
                               trace=job.trace): job for job in jobs}
        for future in as_completed(futures):
            graded = future.result()
            results[graded.label] = graded
            tick(graded)
    except BaseException:  # Ctrl-C, SIGTERM: no grading may outlive the audit
        pool.shutdown(wait=False, cancel_futures=True)
        stop_all()
        raise
    pool.shutdown()
    return results


def _progress(total: int):
    try:
        from tqdm import tqdm
        return tqdm(total=total, unit="grading", file=sys.stderr, dynamic_ncols=True)
    except ImportError:  # pragma: no cover - tqdm ships with the lock
        return None


def audit(options: AuditOptions) -> dict:
    """Run the audit; returns the plain-data result (also what audit.json holds)."""
    started = time.monotonic()
    lab = load_lab(options.root, options.lab)
    work = options.out / "submissions"
    if work.exists():
        shutil.rmtree(work)
    if (options.out / "reports").exists():
        shutil.rmtree(options.out / "reports")
    work.mkdir(parents=True)
    traces = [options.out / "traces" / f"solution-{n}.jsonl" for n in range(options.runs)]
    for t in traces:
        t.parent.mkdir(parents=True, exist_ok=True)
        t.unlink(missing_ok=True)

    files = mutate.student_python_files(lab.solution_dir, lab.files)
    unknown = set(options.files) - set(files)
    if unknown:
        raise RuntimeError(f"--files {', '.join(sorted(unknown))}: {lab.id}'s student-facing "
                           f"Python files are {', '.join(files)}")
    if options.files:
        files = [f for f in files if f in options.files]
    listed = equivalent_list(options.root, options.lab)
    all_mutants = [m for f in files for m in
                   mutate.mutants_of((lab.solution_dir / f).read_text(), f)] \
        if options.mutants else []
    equivalent = {m.id: ("compiles to the solution's own bytecode" if m.same_code
                         else listed[m.id]) for m in all_mutants
                  if m.same_code or m.id in listed}
    candidates = [m for m in all_mutants if m.id not in equivalent]
    if options.max_mutants is not None and len(candidates) > options.max_mutants:
        candidates = sorted(random.Random(options.seed).sample(candidates,
                                                                options.max_mutants),
                            key=lambda m: (m.file, m.line, m.operator, m.id))
    wrongs = sorted(p.name for p in (options.root / "fixtures" / options.lab).glob(
        f"{PREFIX}*") if p.is_dir())

    bar = _progress(options.runs + 1 + len(wrongs) + len(candidates))

    def tick(graded: Graded) -> None:
        if bar is not None:
            bar.set_postfix_str(f"{graded.label} {graded.score:g}", refresh=False)
            bar.update(1)

    # 1. the solution (traced: which item calls which student function), and the starter
    first = [Job(f"solution#{n + 1}", "solution", lab.solution_dir, trace=traces[n])
             for n in range(options.runs)]
    first.append(Job("starter", "starter", lab.starter_dir))
    graded = _grade_all(first, options, tick)
    solution_runs = [graded[j.label] for j in first if j.kind == "solution"]
    broken = [g for g in solution_runs if g.problem]
    if broken:
        raise RuntimeError(f"the solution did not grade: {broken[0].problem}")
    baseline = _solution_floor(solution_runs)
    calls = callmap.traced_calls(traces)

    # 2. known-wrongs and mutants
    second: list[Job] = []
    for name in wrongs:
        folder = materialise(overlay(options.root, options.lab, name), work / name)
        second.append(Job(name, "wrong", folder))
    mutant_items: dict[str, list[str] | None] = {}
    if options.only_items:
        unexercised = [m for m in candidates if callmap.never_called(
            calls, m.file, (lab.solution_dir / m.file).read_text(), m.function)]
        candidates = [m for m in candidates if m not in unexercised]
    else:
        unexercised = []
    for n, m in enumerate(candidates):
        folder = work / f"mutant-{n:04d}"
        shutil.copytree(lab.solution_dir, folder,
                        ignore=shutil.ignore_patterns("__pycache__"))
        m.write_into(folder)
        items = callmap.items_for(calls, m.file, (lab.solution_dir / m.file).read_text(),
                                  m.function) if options.only_items else None
        chosen = sorted(items) if items is not None else None
        mutant_items[m.id] = chosen
        second.append(Job(m.id, "mutant", folder, items=chosen))
    graded.update(_grade_all(second, options, tick))
    if bar is not None:
        bar.close()

    data = _result(options, lab.id, solution_runs, graded, baseline, wrongs, candidates,
                   equivalent, all_mutants, mutant_items, time.monotonic() - started)
    data["not_exercised"] = [{"id": m.id, "function": m.function, "diff": m.diff}
                             for m in unexercised]
    return data


def _solution_floor(runs: list[Graded]) -> dict[str, float]:
    items = set().union(*(r.items for r in runs))
    return {name: min(r.items[name]["score"] for r in runs if name in r.items)
            for name in items}


def lost_items(graded: Graded, floor: dict[str, float]) -> list[str]:
    return sorted(name for name, item in graded.items.items()
                  if name in floor and item["score"] < floor[name] - NOISE)


def curves_of(runs: list[Graded]) -> list[dict]:
    """Each curve (a `curve:<key>` measurement) with the solution's values over the runs and
    its distance from the thresholds in units of their spread."""
    out = []
    names = sorted({(item, key[len("curve:"):]) for r in runs for item, i in r.items.items()
                    for key in i["measured"] if key.startswith("curve:")})
    for item, key in names:
        values = [float(r.items[item]["measured"][key]) for r in runs
                  if item in r.items and isinstance(r.items[item]["measured"].get(key),
                                                    (int, float))]
        thresholds = next(r.items[item]["measured"][f"curve:{key}"] for r in runs
                          if item in r.items and f"curve:{key}" in r.items[item]["measured"])
        if not values:
            continue
        median = statistics.median(values)
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        sign = 1.0 if thresholds["full_at"] >= thresholds["zero_at"] else -1.0

        def headroom(threshold: float) -> float | None:
            gap = sign * (median - threshold)
            return round(gap / spread, 2) if spread > 0 else None

        out.append({"item": item, "key": key, "values": values, "median": median,
                    "stdev": round(spread, 6), "zero_at": thresholds["zero_at"],
                    "full_at": thresholds["full_at"],
                    "headroom_full_sigmas": headroom(thresholds["full_at"]),
                    "headroom_zero_sigmas": headroom(thresholds["zero_at"])})
    return out


def _result(options: AuditOptions, lab_id: str, solution_runs: list[Graded],
            graded: dict[str, Graded], floor: dict[str, float], wrongs: list[str],
            candidates: list[mutate.Mutant], equivalent: dict[str, str],
            all_mutants: list[mutate.Mutant], mutant_items: dict[str, list[str] | None],
            wall: float) -> dict:
    items = sorted(floor)
    per_item = {}
    for name in items:
        scores = [r.items[name]["score"] for r in solution_runs if name in r.items]
        per_item[name] = {"max_score": solution_runs[0].items[name]["max_score"],
                          "solution_scores": scores, "spread": max(scores) - min(scores)}

    def entry(label: str, kind: str) -> dict:
        g = graded[label]
        return {"label": label, "kind": kind, "score": g.score, "problem": g.problem,
                "wall_seconds": round(g.wall_seconds, 1), "lost": lost_items(g, floor),
                "items": {n: {"status": i["status"], "score": i["score"],
                              "message": i["message"][:500]} for n, i in g.items.items()},
                "grade_json": g.grade_path}

    wrong_entries = [entry(w, "wrong") for w in wrongs]
    mutants = []
    for m in candidates:
        e = entry(m.id, "mutant")
        e.update(id=m.id, file=m.file, line=m.line, operator=m.operator, function=m.function,
                 diff=m.diff, graded_items=mutant_items.get(m.id),
                 killed=bool(e["lost"] or e["problem"]))
        mutants.append(e)
    killed = sum(m["killed"] for m in mutants)
    by_id = {m.id: m for m in all_mutants}
    never_failed = [n for n in items if not any(n in w["lost"] for w in wrong_entries)]
    # a student's mistake that ends as a grader error is blamed on the wrong party
    misblamed = [{"label": e["label"], "items": sorted(n for n, i in e["items"].items()
                                                       if i["status"] == "error")}
                 for e in [*wrong_entries, *mutants]
                 if any(i["status"] == "error" for i in e["items"].values())]
    return {
        "lab": lab_id, "profile": options.profile, "runs": options.runs,
        "select": options.select, "files": list(options.files),
        "jobs": options.jobs, "only_items": options.only_items,
        "wall_seconds": round(wall, 1),
        "items": per_item,
        "curves": curves_of(solution_runs),
        "solution": [entry(r.label, "solution") for r in solution_runs],
        "starter": entry("starter", "starter"),
        "wrongs": wrong_entries,
        "items_no_wrong_fails": never_failed,
        "grader_errors": misblamed,
        "mutants": mutants,
        "mutants_total": len(all_mutants),
        "mutants_sampled": options.max_mutants is not None,
        "equivalent": [{"id": i, "why": why, "diff": by_id[i].diff}
                       for i, why in sorted(equivalent.items())],
        "mutation_score": {"killed": killed, "graded": len(mutants),
                           "fraction": round(killed / len(mutants), 4) if mutants else None},
    }
