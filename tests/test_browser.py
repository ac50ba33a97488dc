"""The HTML report in a real browser: headless Chromium (Debian's chromium and
chromium-driver, which ``.ci/run`` installs) driven by Selenium."""

import os
import shutil

import pytest

from gankit.cli import main
from gankit.config import load_config
from gankit.runs import train

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
if not (CHROMIUM and DRIVER):  # CI installs them: there a missing browser is a failure
    if os.environ.get("CI"):
        raise RuntimeError("chromium / chromedriver not found; .ci/run installs them")
    pytest.skip("chromium and chromedriver are not installed", allow_module_level=True)

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """A two-run comparison (ring8 and grid25, with training snapshots)."""
    root = tmp_path_factory.mktemp("browser")
    runs = []
    for name in ("ring8", "grid25"):
        cfg = load_config(None, [f"data.name='{name}'", "model.g_width=16", "model.d_width=16",
                                 "train.steps=60", "train.batch_size=32", "train.log_every=10",
                                 "train.snapshot_every=20", "train.eval_samples=300",
                                 "train.device='cpu'", "tricks.pack=2"])
        train(cfg, root / name, progress=False)
        runs.append(str(root / name))
    assert main(["report", *runs, "--out", str(root / "report.html")]) == 0
    return root / "report.html"


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run", "--window-size=1280,900",
                f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    yield driver
    driver.quit()


def shown_frame(slider):
    frames = slider.find_elements(By.CSS_SELECTOR, "img.frame")
    visible = [f for f in frames if f.is_displayed()]
    assert len(visible) == 1, "exactly one frame of the slider is shown"
    return visible[0]


def test_report_slider_moves_frames_and_step_label(report, browser):
    browser.get(report.as_uri())
    assert browser.execute_script("return window.innerWidth") >= 1200
    runs = browser.find_elements(By.CSS_SELECTOR, ".runs section")
    first, second = (r.location for r in runs)
    assert first["y"] == second["y"] and first["x"] < second["x"]  # side by side
    sliders = browser.find_elements(By.CSS_SELECTOR, ".slider")
    assert len(sliders) == 2  # one per run
    slider = sliders[0]
    label = slider.find_element(By.CSS_SELECTOR, ".step")
    frame = shown_frame(slider)
    assert label.text == "step 60" == f"step {frame.get_attribute('data-step')}"
    assert frame.size["width"] >= 400
    slider.find_element(By.CSS_SELECTOR, "input").send_keys(Keys.ARROW_LEFT)  # one frame back
    moved = shown_frame(slider)
    assert moved.get_attribute("data-step") == "40" and label.text == "step 40"
    slider.find_element(By.CSS_SELECTOR, "input").send_keys(Keys.HOME)
    assert shown_frame(slider).get_attribute("data-step") == "20" and label.text == "step 20"
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []


def test_report_has_no_horizontal_overflow_at_1280_px(report, browser):
    browser.get(report.as_uri())
    width = browser.execute_script("return window.innerWidth")
    scroll = browser.execute_script("return document.documentElement.scrollWidth")
    assert scroll <= width, f"the page is {scroll} px wide in a {width} px window"
    # the metric table: config columns, directions with their meaning on hover
    heads = [h.text for h in browser.find_elements(By.CSS_SELECTOR, "th")]
    assert {"objective", "remedies", "steps", "seeds"} <= set(heads)
    modes = browser.find_element(By.XPATH, "//th[starts-with(normalize-space(.), 'modes')]")
    assert "high-quality" in modes.get_attribute("title")
    assert "pack=2" in browser.find_element(By.CSS_SELECTOR, "table").text
