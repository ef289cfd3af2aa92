"""noVNC in headless Chromium (Debian's ``chromium`` and
``chromium-driver``, driven by selenium): open a console URL, wait for
noVNC's connected state, and save the canvas as a screenshot.

Blocking: call it from a thread (trial tests) or a plain test.
"""

from __future__ import annotations

import os
import shutil
import time

from twisted.trial.unittest import SkipTest

from tests.base import demanded

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--disable-component-update",
         "--no-first-run", "--disable-dev-shm-usage")


def require_browser() -> None:
    """Skip (or fail, when ``chromium`` is demanded) without Chromium,
    its driver or selenium."""
    missing = [path for path in (CHROMIUM, CHROMEDRIVER)
               if not shutil.which(path)]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("selenium (pip)")
    if missing:
        message = "no headless browser: missing " + ", ".join(missing)
        if demanded("chromium"):
            raise AssertionError(message)
        raise SkipTest(message)


def novnc_screenshot(url: str, screenshot: str, timeout: float = 60
                     ) -> tuple[str, int]:
    """Open ``url`` (a noVNC page), wait until noVNC says it is connected
    and its canvas holds more than one colour; save the page as
    ``screenshot``; return ``(status text, distinct colours seen)``.
    AssertionError (with the page's status and log) on a timeout."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument("--window-size=1024,768")
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        driver.set_page_load_timeout(timeout)
        driver.get(url)
        deadline = time.monotonic() + timeout
        status, colours = "", 0
        while time.monotonic() < deadline:
            status = driver.execute_script(
                "var s = document.getElementById('status');"
                "return s ? s.textContent : '';") or ""
            colours = driver.execute_script(_COLOURS) or 0
            if status.startswith("Connected") and colours > 1:
                time.sleep(1)  # the rest of the first update
                break
            time.sleep(0.5)
        os.makedirs(os.path.dirname(os.path.abspath(screenshot)),
                    exist_ok=True)
        driver.save_screenshot(screenshot)
        if not (status.startswith("Connected") and colours > 1):
            raise AssertionError(
                f"noVNC did not show a picture: status {status!r}, "
                f"{colours} colours on the canvas (screenshot "
                f"{screenshot})")
        return status, colours
    finally:
        driver.quit()


#: Distinct colours in a sample of the noVNC canvas's pixels (0 without
#: a canvas).
_COLOURS = """
var canvas = document.querySelector('canvas');
if (!canvas || !canvas.width || !canvas.height) { return 0; }
var data = canvas.getContext('2d').getImageData(
    0, 0, canvas.width, canvas.height).data;
var seen = {}; var count = 0;
var step = Math.max(4, Math.floor(data.length / 4 / 20000) * 4);
for (var i = 0; i < data.length; i += step) {
    var key = data[i] + ',' + data[i + 1] + ',' + data[i + 2];
    if (!seen[key]) { seen[key] = 1; count++; }
}
return count;
"""
