"""An audit's result as text (the terminal), JSON and HTML."""

from __future__ import annotations

import html
import json
from pathlib import Path


def _cell(result: dict, item: str) -> str:
    got = result["items"].get(item)
    if got is None:
        return "-" if not result.get("problem") else "!"
    mark = {"passed": "ok", "partial": "~", "failed": "X", "error": "E"}[got["status"]]
    return f"{mark}{'*' if item in result['lost'] else ''}"


def columns(data: dict) -> list[dict]:
    return [*data["solution"], data["starter"], *data["wrongs"]]


def text(data: dict) -> str:
    lines = [f"audit of {data['lab']} ({data['profile']} profile): {data['runs']} solution "
             f"runs, {len(data['wrongs'])} known-wrong, {len(data['mutants'])} mutants graded "
             f"in {data['wall_seconds']:.0f} s"]
    cols = columns(data)
    lines.append("")
    lines.append("item x submission (ok passed, ~ partial, X failed, E grader error, - not run; "
                 "* = scored below the solution's lowest run)")
    width = max([len(i) for i in data["items"]] + [4])
    header = " ".join(f"c{n}" for n in range(len(cols)))
    lines.append(f"{'item':<{width}}  {header}  mutants-killed")
    for item in data["items"]:
        cells = " ".join(f"{_cell(c, item):<{len(f'c{n}')}}" for n, c in enumerate(cols))
        kills = sum(item in m["lost"] for m in data["mutants"])
        lines.append(f"{item:<{width}}  {cells}  {kills}")
    for n, c in enumerate(cols):
        lines.append(f"  c{n} = {c['label']} ({c['score']:g}{'; ' + c['problem'][:80] if c['problem'] else ''})")
    lines.append("")
    for name, info in data["items"].items():
        if info["spread"]:
            lines.append(f"solution score spread on {name}: {info['solution_scores']}")
    for c in data["curves"]:
        lines.append(f"curve {c['key']} ({c['item']}): median {c['median']:g}, sd "
                     f"{c['stdev']:g} over {len(c['values'])} runs; full at {c['full_at']:g} "
                     f"({_sigmas(c['headroom_full_sigmas'])}), zero at {c['zero_at']:g} "
                     f"({_sigmas(c['headroom_zero_sigmas'])})")
    if data["starter"]["score"]:
        lines.append(f"WARNING: the starter scores {data['starter']['score']:g} (expected 0)")
    missing = data["items_no_wrong_fails"]
    lines.append("items no known-wrong fails: " + (", ".join(missing) if missing else "none"))
    for e in data.get("grader_errors", []):
        lines.append(f"grader error (status error, blamed on the staff) on {e['label']}: "
                     f"{', '.join(e['items'])}")
    score = data["mutation_score"]
    if score["graded"]:
        lines.append(f"mutation score: {score['killed']}/{score['graded']} killed "
                     f"({100 * score['fraction']:.1f} %) of non-equivalent mutants"
                     f"{' (a sample of ' + str(data['mutants_total']) + ')' if data['mutants_sampled'] else ''}; "
                     f"{len(data['equivalent'])} equivalent, listed apart")
    for e in data["equivalent"]:
        lines.append(f"  equivalent {e['id']}: {e['why']}")
    skipped = data.get("not_exercised", [])
    if skipped:
        functions = sorted({m["function"] for m in skipped})
        lines.append(f"{len(skipped)} mutants not graded: no item of this run calls "
                     f"{', '.join(functions)} (out of scope for the profile, or not selected)")
    survivors = [m for m in data["mutants"] if not m["killed"]]
    if survivors:
        lines.append(f"surviving mutants ({len(survivors)}):")
        for m in survivors:
            ran = ", ".join(m["graded_items"]) if m["graded_items"] else "every item"
            lines.append(f"--- {m['id']} (in {m['function'] or 'module level'}; graded: {ran})")
            lines.append(m["diff"].rstrip())
    return "\n".join(lines)


def _sigmas(value: float | None) -> str:
    return "spread 0 across runs" if value is None else f"{value:+.1f} sd away"


def write(data: dict, out: Path) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    json_path, html_path = out / "audit.json", out / "audit.html"
    json_path.write_text(json.dumps(data, indent=1, sort_keys=True))
    html_path.write_text(to_html(data))
    return json_path, html_path


def to_html(data: dict) -> str:
    e = html.escape
    cols = [*columns(data), *data["mutants"]]
    head = "".join(f"<th title='{e(c['label'])}'>{e(c['label'][:24])}</th>" for c in cols)
    rows = []
    for item in data["items"]:
        cells = "".join(
            f"<td class='{'lost' if item in c['lost'] else ''}'>{e(_cell(c, item))}</td>"
            for c in cols)
        rows.append(f"<tr><th>{e(item)}</th>{cells}</tr>")
    survivors = "".join(f"<h3>{e(m['id'])}</h3><pre>{e(m['diff'])}</pre>"
                        for m in data["mutants"] if not m["killed"])
    equivalent = "".join(f"<li>{e(x['id'])}: {e(x['why'])}<pre>{e(x['diff'])}</pre></li>"
                         for x in data["equivalent"])
    summary = e(text(data).split("\nsurviving mutants")[0])
    return ("<!doctype html><meta charset='utf-8'><title>audit "
            f"{e(data['lab'])}</title><style>td,th{{border:1px solid #ccc;padding:2px 4px;"
            "font:12px monospace}} td.lost{background:#fbb} table{border-collapse:collapse}"
            "</style>"
            f"<h1>audit of {e(data['lab'])}</h1><pre>{summary}</pre>"
            f"<h2>item &times; submission</h2><table><tr><th>item</th>{head}</tr>"
            f"{''.join(rows)}</table><h2>surviving mutants</h2>{survivors or '<p>none</p>'}"
            f"<h2>equivalent mutants</h2><ul>{equivalent}</ul>")
