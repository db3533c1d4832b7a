"""The demo reports in a real browser: Playwright drives Debian's headless Chromium (no browser download).

Checks what a reader does: the page loads without console errors, every image decodes, a header click sorts a
table, typing in its search box filters it, every navigation link lands with its heading visible below the sticky
bar, and nothing is wider than the window except inside a scroll box. Screenshots are written beside each report
(`report-screenshots/`) for people to look at.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

CHROMIUM = os.environ.get("FERROSTEM_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
# Flags for a closed network: without the background-networking ones Chromium keeps dialling out.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1280, "height": 900}


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e .[test])")
    if not CHROMIUM:
        pytest.skip("Chromium not found: `apt-get install chromium` (.ci/run installs it), or set FERROSTEM_CHROMIUM")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def reports(workflow_run: Path) -> list[Path]:
    found = sorted(workflow_run.glob("results/*/report.html"))
    assert len(found) >= 3, found
    return found


def open_report(browser, report: Path):
    page = browser.new_page(viewport=VIEWPORT)
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(report.as_uri())
    page.wait_for_load_state("load")
    return page, errors


def test_reports_load_cleanly_and_fit_the_window(browser, workflow_run):
    for report in reports(workflow_run):
        page, errors = open_report(browser, report)
        shots = report.parent / "report-screenshots"
        shots.mkdir(exist_ok=True)
        page.screenshot(path=str(shots / "top.png"))
        page.screenshot(path=str(shots / "full.png"), full_page=True)
        assert errors == [], f"{report}: console errors {errors}"
        broken = page.evaluate("""() => Array.from(document.images)
            .filter(img => !img.complete || img.naturalWidth === 0).map(img => img.alt || img.src.slice(0, 60))""")
        assert broken == [], f"{report}: images that do not decode: {broken}"
        svgs = page.evaluate("() => Array.from(document.querySelectorAll('svg')).filter(s => !s.getBBox).length")
        assert svgs == 0
        too_wide = page.evaluate("""() => {
            const limit = document.documentElement.clientWidth;
            return Array.from(document.querySelectorAll('body *'))
              .filter(el => el.getBoundingClientRect().right > limit + 1)
              .filter(el => !el.closest('.table-box, pre'))
              .map(el => el.tagName + (el.id ? '#' + el.id : '') + ' ' + Math.round(el.getBoundingClientRect().right));
        }""")
        assert too_wide == [], f"{report}: wider than the {VIEWPORT['width']} px window: {too_wide[:5]}"
        assert page.evaluate("() => document.documentElement.scrollWidth") <= VIEWPORT["width"]
        page.close()


def test_navigation_links_land_with_the_heading_visible(browser, workflow_run):
    for report in reports(workflow_run):
        page, _ = open_report(browser, report)
        targets = page.evaluate("() => Array.from(document.querySelectorAll('nav a')).map(a => a.getAttribute('href'))")
        assert targets, f"{report}: no navigation links"
        findings = page.evaluate(
            "() => Array.from(document.querySelectorAll('a.finding')).map(a => a.getAttribute('href'))"
        )
        assert set(findings) <= set(targets), "every main finding links to a section of the report"
        nav_height = page.evaluate("() => document.querySelector('nav').getBoundingClientRect().height")
        for target in targets:
            page.click(f"nav a[href='{target}']")
            page.wait_for_timeout(50)
            top = page.evaluate(f"() => document.querySelector('{target} h2').getBoundingClientRect().top")
            assert nav_height - 1 <= top < VIEWPORT["height"], (
                f"{report}: {target} heading at {top}px (bar {nav_height}px)"
            )
        page.close()


def test_demo_figures_carry_the_simulated_mark(browser, workflow_run):
    for report in reports(workflow_run):
        page, _ = open_report(browser, report)
        marks = page.evaluate("""() => Array.from(document.querySelectorAll('figure'))
            .map(f => getComputedStyle(f, '::before').content)""")
        assert marks and all(mark == '"SIMULATED"' for mark in marks), f"{report}: {marks[:3]}"
        page.close()


def test_tables_sort_filter_and_download(browser, workflow_run):
    report = workflow_run / "results/demo_tcga/report.html"
    page, _ = open_report(browser, report)
    assert page.locator(".table-box table.table").count() >= 5
    assert page.locator(".table-tools a[download]").count() == page.locator(".table-box table.table").count()
    long_table = page.locator(".table-box table.table").filter(has=page.locator("tbody tr:nth-child(30)")).first
    box = long_table.locator("xpath=..")
    column = long_table.locator("thead tr").last.locator("th")
    numeric = next(
        i
        for i in range(column.count())
        if page.evaluate(
            """([table, i]) => Array.from(table.tBodies[0].rows).every(r => r.cells[i].textContent.trim() === '' ||
               !isNaN(Number(r.cells[i].textContent.trim())))""",
            [long_table.element_handle(), i],
        )
    )

    def shown_values() -> list[float]:
        return page.evaluate(
            """([table, i]) => Array.from(table.tBodies[0].rows)
            .filter(r => r.style.display !== 'none' && r.cells[i].textContent.trim() !== '')
            .map(r => Number(r.cells[i].textContent.trim()))""",
            [long_table.element_handle(), numeric],
        )

    assert len(shown_values()) <= 25, "long tables are paginated"
    column.nth(numeric).click()
    ascending = shown_values()
    assert ascending == sorted(ascending)
    column.nth(numeric).click()
    descending = shown_values()
    assert descending == sorted(descending, reverse=True) and descending != ascending
    first_cell = long_table.locator("tbody tr").first.locator("td").first.inner_text()
    tools = box.locator("xpath=preceding-sibling::div[contains(@class,'table-tools')][1]")
    tools.locator("input[type=search]").fill(first_cell)
    shown = long_table.locator("tbody tr:visible")
    assert 1 <= shown.count() < 25
    assert all(first_cell.lower() in shown.nth(i).inner_text().lower() for i in range(shown.count()))
    tsv = tools.locator("a[download]").get_attribute("href")
    assert tsv.startswith("data:text/tab-separated-values")
    page.screenshot(path=str(report.parent / "report-screenshots" / "filtered-table.png"))
    page.close()


def test_gene_jump_box_finds_a_gene(browser, workflow_run):
    report = workflow_run / "results/demo_tcga/report.html"
    page, _ = open_report(browser, report)
    page.fill("#gene-jump input", "GPX4")
    page.press("#gene-jump input", "Enter")
    status = page.inner_text("#gene-jump-status")
    assert status and status != "not found", status
    filtered = page.evaluate("""() => Array.from(document.querySelectorAll('.table-tools'))
        .filter(tools => tools.querySelector('input').value === 'GPX4')
        .map(tools => Array.from(tools.nextElementSibling.querySelectorAll('tbody tr'))
             .filter(row => row.style.display !== 'none').map(row => row.textContent))""")
    assert filtered, "no table was filtered to the gene"
    assert all(rows and all("GPX4" in row.upper() for row in rows) for rows in filtered), filtered
    page.fill("#gene-jump input", "NOTAGENE1")
    page.press("#gene-jump input", "Enter")
    assert page.inner_text("#gene-jump-status") == "not found"
    page.close()


def test_figures_download_as_png_and_as_svg(browser, workflow_run):
    report = workflow_run / "results/demo_tcga/report.html"
    page, errors = open_report(browser, report)
    figures = page.locator("figure:has(img)").count()
    assert figures >= 10
    page.wait_for_function(
        "n => document.querySelectorAll('a.figure-download[download$=\".svg\"][data-ready]').length === n",
        arg=figures,
        timeout=20000,
    )
    links = page.evaluate("""async () => {
        const parsed = [];
        for (const figure of document.querySelectorAll('figure:has(img)')) {
            const png = figure.querySelector('a[download$=".png"]'), svg = figure.querySelector('a[download$=".svg"]');
            const text = await (await fetch(svg.href)).text();
            const doc = new DOMParser().parseFromString(text, 'image/svg+xml');
            parsed.push({png: png.href.slice(0, 22), root: doc.documentElement.nodeName,
                         error: doc.getElementsByTagName('parsererror').length, type: (await (await fetch(svg.href)).blob()).type,
                         kb: text.length / 1024});
        }
        return parsed;
    }""")
    assert all(link["png"] == "data:image/png;base64," for link in links)
    assert all(link["root"] == "svg" and link["error"] == 0 and link["type"] == "image/svg+xml" for link in links), (
        links[:3]
    )
    assert max(link["kb"] for link in links) < 2048, "dense layers are rasterized, so no SVG is huge"
    with page.expect_download() as download:
        page.locator("figure a[download$='.svg']").first.click()
    assert download.value.suggested_filename.endswith(".svg")
    assert Path(download.value.path()).read_bytes().startswith(b"<?xml")
    page.locator("section[id^='de_'] .figures").first.scroll_into_view_if_needed()
    page.screenshot(path=str(report.parent / "report-screenshots" / "de-figures.png"))
    assert errors == []
    page.close()


def test_formatted_numbers_match_their_values_and_sort_numerically(browser, workflow_run):
    report = workflow_run / "results/demo_tcga/report.html"
    page, _ = open_report(browser, report)
    # every shown number is its full value rounded, never a different number
    wrong = page.evaluate("""() => Array.from(document.querySelectorAll('td[data-value]')).filter(td => {
            const value = Number(td.getAttribute('data-value')), shown = Number(td.textContent.trim());
            return isFinite(value) && !(Math.abs(shown - value) <= 0.006 * Math.abs(value) + 0.0051);
        }).map(td => td.getAttribute('data-value') + ' shown as ' + td.textContent.trim())""")
    assert wrong == [], wrong[:5]
    scientific = page.evaluate(
        "() => Array.from(document.querySelectorAll('td')).filter(td => /e-\\d\\d$/.test(td.textContent)).length"
    )
    assert scientific > 0, "p-values are written in scientific notation"
    # a p-value column whose text mixes exponents: text order differs from numeric order, the sort is numeric
    table = page.locator(".table-box table.table").filter(has=page.locator("thead th", has_text="padj")).first
    headers = table.locator("thead tr").last.locator("th")
    column = next(i for i in range(headers.count()) if headers.nth(i).inner_text().strip() == "padj")
    headers.nth(column).click()

    def shown() -> list[tuple[float, str]]:
        return [
            (float(v), t)
            for v, t in page.evaluate(
                """([table, i]) => Array.from(table.tBodies[0].rows)
            .filter(r => r.style.display !== 'none' && r.cells[i].hasAttribute('data-value'))
            .map(r => [r.cells[i].getAttribute('data-value'), r.cells[i].textContent.trim()])""",
                [table.element_handle(), column],
            )
        ]

    ascending = shown()
    assert len(ascending) >= 5
    assert [v for v, _ in ascending] == sorted(v for v, _ in ascending)
    assert [float(t) for _, t in ascending] == sorted(float(t) for _, t in ascending)
    headers.nth(column).click()
    descending = shown()
    assert [v for v, _ in descending] == sorted((v for v, _ in descending), reverse=True)
    # every Ensembl id in a table sits in a row whose gene symbol shows that id on hover
    orphans = page.evaluate("""() => Array.from(document.querySelectorAll('td'))
        .filter(td => /^ENS[A-Z]*G\\d{11}/.test(td.textContent.trim()))
        .filter(td => !td.parentNode.querySelector('td[title="' + td.textContent.trim() + '"]'))
        .map(td => td.textContent.trim())""")
    assert orphans == [], orphans[:5]
    page.close()
