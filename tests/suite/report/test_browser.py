"""The smoke report as a researcher sees it: rendered in headless Chromium at 1280 px (issue 14).

A small results folder is run here at the smoke profile (real experiments: ADM Table 2 and Fig. 3,
TV Table 1, a leaderboard with results and one whose dataset is absent), the report is built
from it, and every page is opened in a real browser:

* no page overflows horizontally (a wide table scrolls inside its box, the page does not);
* every plot (``<img>`` of an SVG, inline ``<svg>``) loaded and has a non-empty bounding box;
* every link resolves (a page or file beside it, an anchor on its page) and none leaves the report;
* the console shows no error; the sorting and the verdict filter work.

Full-page screenshots go to ``reports/browser/`` (CI keeps them as artifacts; set
``ENERGYBENCH_SCREENSHOTS`` to put them elsewhere). Skips, saying what to install, when the
Python client (playwright, in the ``test`` extra) or a Chromium is absent.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from suite.harness import registry, runner

REPO = Path(__file__).resolve().parents[3]
WIDTH = 1280
EXPERIMENTS = ("adm.table2", "adm.fig3", "tvlayers.table1", "leaderboard.denoise-mini-sigma25-v1",
               "leaderboard.denoise-cbsd68-sigma25-v1")
CHROMIUM_NAMES = ("chromium-headless-shell", "chromium", "chromium-browser", "google-chrome")
CHROMIUM_PATHS = ("/usr/lib/chromium/chromium-headless-shell", "/usr/lib/chromium/headless_shell")


def chromium() -> str | None:
    """A Chromium executable: ``$ENERGYBENCH_CHROMIUM``, else one on PATH or where Debian puts it."""
    named = os.environ.get("ENERGYBENCH_CHROMIUM")
    if named:
        return named if Path(named).is_file() else None
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return next((p for p in CHROMIUM_PATHS if Path(p).is_file()), None)


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="the browser test needs playwright: "
                                   "pip install -e '.[test]'")
    executable = chromium()
    if executable is None:
        pytest.skip("no Chromium found (Debian: apt-get install chromium-headless-shell; or set ENERGYBENCH_CHROMIUM)")
    with sync_api.sync_playwright() as playwright:
        # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start
        instance = playwright.chromium.launch(executable_path=executable, headless=True, args=["--no-sandbox"])
        yield instance
        instance.close()


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """The smoke report of a few real experiments, run and rendered in a temporary folder."""
    from suite.report.render import build

    folder = tmp_path_factory.mktemp("browser-report")
    options = runner.Options(profile="smoke", device="cpu", results=folder / "results", progress=False)
    summary = runner.run([registry.get(e) for e in EXPERIMENTS], options)
    assert summary.ok, summary.failed
    build(folder / "results", folder / "reports", profile="smoke")
    empty = folder / "empty-results"
    empty.mkdir()
    build(empty, folder / "empty-report", profile="smoke")
    return folder


def _screenshots() -> Path:
    path = Path(os.environ.get("ENERGYBENCH_SCREENSHOTS", REPO / "reports" / "browser"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def _open(browser, page_path: Path):
    page = browser.new_page(viewport={"width": WIDTH, "height": 900})
    errors: list[str] = []
    page.on("console", lambda message: errors.append(f"console {message.type}: {message.text}")
            if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(f"page error: {error}"))
    page.on("requestfailed", lambda request: errors.append(f"request failed: {request.url}"))
    page.goto(page_path.as_uri())
    page.wait_for_load_state("load")
    return page, errors


def _check_page(browser, page_path: Path, shots: Path, prefix: str) -> None:
    page, errors = _open(browser, page_path)
    try:
        name = page_path.name
        widths = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
        assert widths[0] <= widths[1], f"{name}: the page is {widths[0]} px wide in a {widths[1]} px window"
        # what sticks out of the page's content column (a cause of overflow, named)
        wide = page.evaluate("""() => Array.from(document.querySelectorAll('body *'))
            .filter(e => e.closest('.scroll') === null && e.getBoundingClientRect().right > document.documentElement.clientWidth + 1)
            .slice(0, 3).map(e => e.tagName + ' ' + (e.textContent || '').slice(0, 60))""")
        assert not wide, f"{name}: elements stick out of the page: {wide}"
        plots = page.evaluate("""() => Array.from(document.querySelectorAll('img, svg')).map(e => {
            const box = e.getBoundingClientRect();
            return {what: e.tagName === 'IMG' ? e.getAttribute('src') : 'inline svg ' + (e.getAttribute('aria-label') || ''),
                    width: box.width, height: box.height,
                    loaded: e.tagName === 'IMG' ? (e.complete && e.naturalWidth > 0) : true};
        })""")
        for plot in plots:
            assert plot["loaded"], f"{name}: {plot['what']} did not load"
            assert plot["width"] > 0 and plot["height"] > 0, f"{name}: {plot['what']} has an empty box {plot}"
        links = page.evaluate("Array.from(document.querySelectorAll('a[href]')).map(a => a.getAttribute('href'))")
        ids = set(page.evaluate("Array.from(document.querySelectorAll('[id]')).map(e => e.id)"))
        for href in links:
            parsed = urlparse(href)
            assert not parsed.scheme and not parsed.netloc, f"{name}: link {href!r} leaves the report"
            if parsed.path:
                target = page_path.parent / unquote(parsed.path)
                assert target.is_file(), f"{name}: link {href!r} points to a missing file"
            elif parsed.fragment:
                assert unquote(parsed.fragment) in ids, f"{name}: link {href!r} names no element of the page"
        page.screenshot(path=str(shots / f"{prefix}{page_path.stem}.png"), full_page=True)
        assert not errors, f"{name}: {errors}"
    finally:
        page.close()


def test_every_page_fits_1280px_loads_its_plots_resolves_its_links_without_console_errors(browser, report):
    shots = _screenshots()
    pages = sorted((report / "reports").glob("*.html"))
    assert {p.name for p in pages} >= {"index.html", "adm.html", "tvlayers.html", "leaderboard.html"}
    for page_path in pages:
        _check_page(browser, page_path, shots, "smoke-")
    svgs = list((report / "reports").rglob("*.svg"))
    assert any("table1" in p.name for p in svgs) and any("fig3" in p.name for p in svgs), svgs


def test_an_empty_results_folder_gives_a_report_that_says_so(browser, report):
    index = report / "empty-report" / "index.html"
    _check_page(browser, index, _screenshots(), "empty-")
    page, errors = _open(browser, index)
    try:
        assert "No results yet" in page.inner_text("body")
    finally:
        page.close()
    assert "No results yet" in (report / "empty-report" / "adm.html").read_text()


def test_tables_sort_by_a_clicked_column_and_claims_filter_by_verdict(browser, report):
    page, errors = _open(browser, report / "reports" / "leaderboard.html")
    try:
        table = page.locator("table.sortable").first  # the benchmark with results comes first
        metric = table.locator("thead th").nth(3)  # its first metric

        def values() -> list[float]:
            return [float(text.split()[0]) for text in table.locator("tbody tr td:nth-child(4)").all_inner_texts()
                    if text.strip() and text.strip() != "not run"]

        metric.click()
        ascending = values()
        assert len(ascending) >= 2 and ascending == sorted(ascending), ascending
        metric.click()
        assert values() == sorted(ascending, reverse=True)
    finally:
        page.close()
    page, errors = _open(browser, report / "reports" / "adm.html")
    try:
        rows = page.locator("#claims tbody tr")
        total = rows.count()
        assert total > 0
        options = page.locator("#verdict-filter option").evaluate_all("o => o.map(x => x.value)")
        chosen = options[1]  # the first verdict that occurs (options[0] is "every verdict")
        page.select_option("#verdict-filter", chosen)
        visible = [r for r in rows.all() if r.is_visible()]
        assert 0 < len(visible) <= total
        assert all(r.get_attribute("data-verdict") == chosen for r in visible)
        assert page.inner_text("#claims-shown") == str(len(visible))
        page.select_option("#verdict-filter", "")
        assert sum(r.is_visible() for r in rows.all()) == total
    finally:
        page.close()
    assert not errors, errors
