"""report.html: written beside the other reports, self-contained, and what it shows agrees
with grade.json. Rendered in headless Chromium (`make browser` installs it; the Chromium
test is skipped, saying so, where it cannot be installed)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest

from labgrade.reports import html as html_report
from labgrade.scoring import ItemResult, LabResult, Status

COURSE = Path(__file__).parent / "data" / "course"

# extra items for a copy of lab_9_9: thresholds recorded by the grader (the kit's score_curve,
# a Comparison through score_curve, a limit), a hidden curve item, and a value whose threshold
# sits only in lab.toml (never plotted: the report reads the result alone)
PLOT_ITEMS = '''
import pytest
from labgrade.bench.compare import Comparison
from labgrade.kit import score_curve


@pytest.mark.points(10)
def test_zz_speedup_curve(score):
    score_curve(score, "speedup", 3.2, zero_at=2.0, full_at=5.0, message="speed-up 3.2x")


@pytest.mark.points(10)
def test_zz_compared_curve(score):
    rounds = Comparison(ratios=(1.2, 1.25, 1.3), baseline=(1.0,) * 3, candidate=(0.8,) * 3)
    score_curve(score, "ngram_speedup", rounds, zero_at=1.1, full_at=1.3,
                message="n-gram speed-up")


@pytest.mark.points(4)
def test_zz_memory_limit(score):
    score.measure(rss_bytes=1.5e9, note="fits", **{"limit:rss_bytes": {"max": 3e9}})


@pytest.mark.points(2)
@pytest.mark.visibility("hidden")
def test_zz_hidden_curve(score):
    score_curve(score, "secret_ratio", 2.0, zero_at=1.0, full_at=3.0, message="secret")


@pytest.mark.points(2)
def test_zz_threshold_only_in_settings(score, settings):
    score.measure(factor_ratio=settings["factor"] / 2)
'''

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--hide-scrollbars"]


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def chromium(*args: str, timeout: float = 90) -> subprocess.CompletedProcess:
    binary = find_chromium()
    if binary is None:
        pytest.skip("headless Chromium is not installed: run `make browser` (Debian package "
                    "`chromium`, needs apt and root); the HTML checks without a browser ran")
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        return subprocess.run([binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                              capture_output=True, timeout=timeout)


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> Path:
    """A copy of the miniature course with two measuring items, graded once (solution)."""
    tmp = tmp_path_factory.mktemp("html")
    course = tmp / "course"
    shutil.copytree(COURSE, course, ignore=shutil.ignore_patterns("__pycache__"))
    (course / "graders" / "lab_9_9" / "test_zz_plots.py").write_text(PLOT_ITEMS)
    toml = course / "graders" / "lab_9_9" / "lab.toml"
    toml.write_text(toml.read_text().replace(
        "[profiles.cpu]\n", "[profiles.cpu]\nfactor_ratio_zero_at = 1.0\n"
                             "factor_ratio_full_at = 2.0\n", 1))
    env = {**os.environ, "SELFTEST_CONFTEST_MARK": str(tmp / "conftest-loaded")}
    subprocess.run([sys.executable, "-m", "pytest", "labs/lab_9_9", "--grade", "--solution",
                    "--profile", "cpu", "--report-dir", str(tmp / "reports")],
                   cwd=course, env=env, capture_output=True, text=True, timeout=300)
    out = tmp / "reports" / "lab_9_9"
    assert (out / "grade.json").exists()
    return out


class Page(HTMLParser):
    """The facts a reader sees: total, items (status, points text), measurements."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[str, str] = {}
        self.items: dict[str, dict] = {}
        self.measures: list[dict] = []
        self.plots: list[dict] = []  # <svg data-plot=...>: one per plotted threshold
        self._stack: list[tuple[str, dict]] = []
        self._row: dict | None = None
        self._cell = -1
        self._capture: str | None = None
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get("id") in ("score", "max-score"):
            self.fields[a["id"]] = a["data-value"]
            self._capture = a["id"]
        if tag == "tr" and "item" in (a.get("class") or "").split():
            self._row = {**a, "cells": []}
            self.items[a["data-name"]] = self._row
            self._cell = -1
        if tag == "td" and self._row is not None:
            self._row["cells"].append("")
        if "measure" in (a.get("class") or "").split():
            self.measures.append(a)
        if tag == "svg" and "data-plot" in a:
            self.plots.append(a)

    def handle_endtag(self, tag):
        if tag == "tr":
            self._row = None
        if tag == "span":
            self._capture = None

    def handle_data(self, data):
        self.text.append(data)
        if self._capture:
            self.fields[self._capture + "-text"] = self.fields.get(
                self._capture + "-text", "") + data
        if self._row is not None and self._row["cells"]:
            self._row["cells"][-1] += data


def parse(text: str) -> Page:
    page = Page()
    page.feed(text)
    return page


def check_page_matches_grade(page: Page, grade: dict) -> None:
    assert float(page.fields["score"]) == grade["score"]
    assert float(page.fields["max-score"]) == grade["max_score"]
    assert page.fields["score-text"].strip() == f"{grade['score']:g}"
    assert page.fields["max-score-text"].strip() == f"{grade['max_score']:g}"
    assert set(page.items) == {i["name"] for i in grade["items"]}
    for item in grade["items"]:
        row = page.items[item["name"]]
        assert row["data-status"] == item["status"]
        assert float(row["data-score"]) == item["score"]
        assert float(row["data-max-score"]) == item["max_score"]
        shown = row["cells"][2].strip()  # the "points" column
        expected = (f"{item['score']:g}/{item['max_score']:g}"
                    if item["status"] != "out_of_scope" else "out of scope")
        assert shown == expected, (item["name"], shown, expected)
    by_key = {(m["data-key"]): m for m in page.measures}
    for item in grade["items"]:
        if item["visibility"] != "visible":
            continue
        for key, value in item["measured"].items():
            if isinstance(value, (int, float)) and key in by_key:
                assert float(by_key[key]["data-value"]) == value, key


def test_report_written_beside_the_others_and_self_contained(graded):
    assert {"grade.json", "classroom.json", "results.json", "junit.xml", "report.html"} <= {
        p.name for p in graded.iterdir()}
    text = (graded / "report.html").read_text()
    # nothing to fetch: no scripts, stylesheets, images or fonts from anywhere
    assert not re.search(r"<script|<link|<img|<iframe|@import|url\(", text, re.I)
    assert not re.search(r"(src|href)\s*=", text, re.I)
    page = parse(text)
    grade = json.loads((graded / "grade.json").read_text())
    check_page_matches_grade(page, grade)
    kinds = {m["data-key"]: m.get("data-kind") for m in page.measures}
    assert kinds["speedup"] == "curve" and kinds["ngram_speedup"] == "curve"
    assert kinds["rss_bytes"] == "max"
    assert kinds.get("note") is None  # a value without a threshold is listed, not plotted
    # lab.toml holds factor_ratio_zero_at/_full_at, but the report reads the result alone
    assert kinds["factor_ratio"] is None
    assert text.count("<svg") >= 4


def curve_measurements(grade: dict) -> set[tuple[str, str]]:
    """(item, key) of each `curve:<key>` a visible item recorded beside a number."""
    return {(item["name"], key.removeprefix("curve:")) for item in grade["items"]
            if item["visibility"] == "visible" for key in item["measured"]
            if key.startswith("curve:")
            and isinstance(item["measured"].get(key.removeprefix("curve:")), (int, float))}


def test_every_curve_item_is_plotted(graded):
    """Each `curve:<key>` an item records (the kit's score_curve) is one curve plot on the
    page, at the recorded thresholds; hidden items are not plotted."""
    grade = json.loads((graded / "grade.json").read_text())
    page = parse((graded / "report.html").read_text())
    plotted = [(p["data-item"], p["data-key"]) for p in page.plots if p["data-plot"] == "curve"]
    expected = curve_measurements(grade)
    assert expected == {("test_zz_speedup_curve", "speedup"),
                        ("test_zz_compared_curve", "ngram_speedup")}
    assert sorted(plotted) == sorted(expected)  # each once
    curves = {(m["data-key"]): m for m in page.measures if m.get("data-kind") == "curve"}
    for item in grade["items"]:
        for key, value in item["measured"].items():
            if key.startswith("curve:") and item["visibility"] == "visible":
                shown = curves[key.removeprefix("curve:")]
                assert float(shown["data-zero-at"]) == value["zero_at"]
                assert float(shown["data-full-at"]) == value["full_at"]
    hidden = {i["name"] for i in grade["items"] if i["visibility"] != "visible"}
    assert "test_zz_hidden_curve" in hidden
    assert not any(p["data-item"] in hidden for p in page.plots)


def test_thresholds_come_from_the_result_only(tmp_path, monkeypatch):
    """A lab.toml beside the submission and in the working directory is never read: only
    the item's own `curve:`/`limit:` measurements are plotted."""
    for base in (tmp_path / "course", tmp_path):
        lab = base / "graders" / "lab_7_7"
        lab.mkdir(parents=True, exist_ok=True)
        (lab / "lab.toml").write_text('id = "lab_7_7"\ntitle = "seven"\nfiles = ["x.py"]\n'
                                      '[profiles.cpu]\nlatency_ms_max = 250\n'
                                      'speedup_zero_at = 7.0\nspeedup_full_at = 9.0\n')
    monkeypatch.chdir(tmp_path)
    sub = tmp_path / "course" / "solutions" / "lab_7_7"
    sub.mkdir(parents=True)
    items = (
        ItemResult("a", "test_speed", Status.PARTIAL, 4.0, 10.0, "4x",
                   measured={"speedup": 4.0, "curve:speedup": {"zero_at": 2.0, "full_at": 5.0},
                             "leaderboard:speed": 4.0}),
        ItemResult("b", "test_latency", Status.FAILED, 0.0, 5.0, "too slow",
                   measured={"latency_ms": 300, "rss_bytes": 2e9,
                             "limit:rss_bytes": {"min": 1e9}}),
        ItemResult("c", "test_secret", Status.FAILED, 0.0, 5.0, "hidden detail here",
                   visibility="hidden", measured={"speedup": 9.0,
                                                  "curve:speedup": {"zero_at": 2, "full_at": 5}}),
    )
    result = LabResult("lab_7_7", "cpu", "solution", str(sub), items, time.time() - 3,
                       time.time())
    text = html_report.render(result)
    page = parse(text)
    plots = {(p["data-item"], p["data-key"], p["data-plot"]) for p in page.plots}
    assert plots == {("test_speed", "speedup", "curve"), ("test_latency", "rss_bytes", "min")}
    speed = next(m for m in page.measures if m["data-key"] == "speedup")
    assert float(speed["data-zero-at"]) == 2.0 and float(speed["data-full-at"]) == 5.0
    latency = next(m for m in page.measures if m["data-key"] == "latency_ms")
    assert latency.get("data-kind") is None  # lab.toml's latency_ms_max is not read
    assert "seven" not in text
    assert "hidden detail here" not in text  # hidden items: score only, no details
    assert 'data-item="test_secret"' not in text
    assert page.items["test_secret"]["data-score"] == "0.0"
    assert "leaderboard:speed" not in text


def test_a_broken_result_still_gives_a_page():
    bad = LabResult("lab_7_7", "cpu", "grade", "/nowhere",
                    (ItemResult("x", "t", Status.PASSED, 1.0, 1.0, measured={"v": object()}),),
                    0.0, 1.0)
    text = html_report.render_safely(bad)
    assert "lab_7_7" in text and "1/1" in text


def _png_stats(path: Path) -> tuple[int, float, set]:
    from PIL import Image
    image = Image.open(path).convert("RGB")
    w, h = image.size
    pixels = list(image.getdata())
    non_white = sum(1 for p in pixels if sum(p) < 720)
    return len(set(pixels)), non_white / (w * h), set(pixels)


def test_chromium_renders_the_report(graded, tmp_path):
    url = (graded / "report.html").resolve().as_uri()
    shot = tmp_path / "report.png"
    proc = chromium("--window-size=1100,1600", f"--screenshot={shot}", url)
    assert shot.exists() and shot.stat().st_size > 1000, proc.stderr.decode()[-2000:]
    colours, ink, palette = _png_stats(shot)
    assert colours > 20 and ink > 0.03, (colours, ink)  # text, bars and plots, not blank
    # the status colours of the breakdown are on screen (passed green, partial amber)
    def near(rgb: tuple[int, int, int]) -> bool:
        return any(sum(abs(a - b) for a, b in zip(rgb, p)) < 30 for p in palette)

    assert near((0x1a, 0x7f, 0x37)) and near((0xbf, 0x87, 0x00))
    dom = chromium("--dump-dom", url)
    assert dom.returncode == 0
    page = parse(dom.stdout.decode())
    check_page_matches_grade(page, json.loads((graded / "grade.json").read_text()))
