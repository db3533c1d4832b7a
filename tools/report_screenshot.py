"""Write the README's screenshot of a report: the top of the page, or a section, as a small PNG.

Run by developers only, on a report of the demo run (Playwright and Debian's chromium, as the browser test):

    python tools/report_screenshot.py results/demo_tcga/report.html docs/images/report.png \
        [--section de_tumour_vs_normal]

The page is shown in a 1280 x 800 window; the PNG is reduced to a 256-colour palette, which keeps it under
300 kB while the text stays sharp.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
from pathlib import Path

from PIL import Image
from playwright.sync_api import sync_playwright

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--section", help="id of the section to scroll to (default: the top of the report)")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=800)
    args = parser.parse_args()
    chromium = os.environ.get("FERROSTEM_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        raise SystemExit("Chromium not found: apt-get install chromium, or set FERROSTEM_CHROMIUM")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": args.width, "height": args.height})
        page.goto(args.report.resolve().as_uri())
        page.wait_for_load_state("load")
        if args.section:
            page.click(f"nav a[href='#{args.section}']")
            page.wait_for_timeout(200)
        shot = page.screenshot()
        browser.close()
    image = Image.open(io.BytesIO(shot)).convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    image.save(args.output, optimize=True)
    print(f"{args.output}: {args.width} x {args.height}, {args.output.stat().st_size / 1000:.0f} kB")


if __name__ == "__main__":
    main()
