"""Screenshots of gankit reports in headless Chromium, at a 1280 px wide window.

    python benchmarks/screenshots.py REPORT.html OUT.png [REPORT.html OUT.png ...]

Needs Debian's chromium and chromium-driver (``apt-get install chromium chromium-driver``)
and selenium (in gankit's ``dev`` extra). The whole page is captured: the window is made
as tall as the page first.
"""

import sys
import tempfile
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service


def screenshot(pairs: list[tuple[Path, Path]]) -> None:
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    with tempfile.TemporaryDirectory() as profile:
        for arg in ("--headless=new", "--no-sandbox", "--disable-gpu",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--no-first-run", "--hide-scrollbars",
                    "--window-size=1280,900", f"--user-data-dir={profile}"):
            options.add_argument(arg)
        driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
        try:
            for report, out in pairs:
                driver.set_window_size(1280, 900)
                driver.get(report.resolve().as_uri())
                height = driver.execute_script("return document.documentElement.scrollHeight")
                driver.set_window_size(1280, height + 100)
                driver.save_screenshot(str(out))
                print(f"{report} -> {out} (1280 x {height} px)")
        finally:
            driver.quit()


if __name__ == "__main__":
    args = sys.argv[1:]
    if not args or len(args) % 2:
        sys.exit(__doc__)
    screenshot([(Path(a), Path(b)) for a, b in zip(args[::2], args[1::2])])
