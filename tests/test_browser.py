"""The draw-a-digit page in a real browser: headless Chromium (Debian's ``chromium`` and
``chromium-driver``) draws each digit 0-9 on the canvas with pointer events (mouse, and
a pen and a finger for some) and reads what the page shows.

Skips with the reason when selenium, chromium or chromedriver is missing, unless
``LENET_FAST_EXPECT_BROWSER=1`` (CI sets it): then their absence fails the test.
``LENET_FAST_SCREENSHOTS=DIR`` keeps a screenshot of the page per digit in DIR.
"""

import os
import shutil
import time
from pathlib import Path

import pytest

from digit_strokes import STROKES
from serve_helpers import SERVE_MODULES, Server

EXPECTED = os.environ.get("LENET_FAST_EXPECT_BROWSER") == "1"


def _missing():
    import importlib.util
    for name in ("selenium",) + SERVE_MODULES:
        if importlib.util.find_spec(name) is None:
            return f"the Python package {name} is not installed (pip install \".[serve,browser]\")"
    for program in ("chromium", "chromedriver"):
        if shutil.which(program) is None:
            return (f"{program} is not installed (Debian: apt-get install -y chromium "
                    "chromium-driver)")
    return None


MISSING = _missing()
if MISSING:
    if EXPECTED:
        pytest.fail(f"LENET_FAST_EXPECT_BROWSER=1 but {MISSING}", pytrace=False)
    pytest.skip(MISSING, allow_module_level=True)


@pytest.fixture(scope="module")
def server():
    s = Server()
    yield s
    assert s.stop() == 0


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=900,820", "--force-device-scale-factor=1"):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver")))
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def _pointer(driver, kind):
    from selenium.webdriver.common.actions import interaction
    from selenium.webdriver.common.actions.action_builder import ActionBuilder
    from selenium.webdriver.common.actions.pointer_input import PointerInput

    kinds = {"mouse": interaction.POINTER_MOUSE, "pen": interaction.POINTER_PEN,
             "touch": interaction.POINTER_TOUCH}
    builder = ActionBuilder(driver, mouse=PointerInput(kinds[kind], kind), duration=5)
    return builder, builder.pointer_action


def draw(driver, pad, digit, kind="mouse"):
    """Draw the strokes of `digit` on the canvas `pad` with a pointer of `kind`."""
    rect = pad.rect
    for stroke in STROKES[digit]:
        builder, pointer = _pointer(driver, kind)
        points = [(round((x - 0.5) * rect["width"] * 0.9), round((y - 0.5) * rect["height"] * 0.9))
                  for x, y in stroke]
        pointer.move_to(pad, *points[0])
        pointer.pointer_down()
        for x, y in points[1:]:
            pointer.move_to(pad, x, y)
        pointer.pointer_up()
        builder.perform()


def settled(driver, timeout=30):
    """The page's state once its answer is for the drawing as it is now."""
    deadline = time.monotonic() + timeout
    while True:
        state = driver.execute_script(
            "const r = document.getElementById('result');"
            "return {version: window.lf.version, shown: Number(r.dataset.version),"
            " busy: window.lf.busy, state: r.dataset.state, strokes: window.lf.strokes,"
            " digit: document.getElementById('digit').textContent,"
            " bars: [...document.querySelectorAll('.bar')].map(b => Number(b.dataset.p)),"
            " widths: [...document.querySelectorAll('.bar .fill')].map(f =>"
            "   f.getBoundingClientRect().width / f.parentElement.getBoundingClientRect().width),"
            " best: [...document.querySelectorAll('.bar.best')].map(b => Number(b.dataset.digit)),"
            " seen: Array.from(document.getElementById('seen').getContext('2d')"
            "        .getImageData(0, 0, 28, 28).data.filter((v, i) => i % 4 == 0)),"
            " error: document.getElementById('status').textContent};")
        if state["version"] == state["shown"] and not state["busy"]:
            return state
        if time.monotonic() > deadline:
            pytest.fail(f"the page did not settle: {state}")
        time.sleep(0.05)


def test_page_reads_each_digit_drawn_with_pointer_events(server, browser):
    from selenium.webdriver.common.by import By

    browser.get(f"http://127.0.0.1:{server.port}/")
    pad = browser.find_element(By.ID, "pad")
    clear = browser.find_element(By.ID, "clear")
    shots = os.environ.get("LENET_FAST_SCREENSHOTS")
    initial = settled(browser)
    assert initial["state"] == "empty" and initial["digit"] == "\u2013"
    kinds = {4: "pen", 7: "touch"}
    for digit in range(10):
        clear.click()
        if digit == 8:
            browser.find_element(By.ID, "show-maps").click()
        draw(browser, pad, digit, kinds.get(digit, "mouse"))
        state = settled(browser)
        assert state["error"] == "", state["error"]
        assert state["state"] == "ready" and state["strokes"] == len(STROKES[digit])
        assert state["digit"] == str(digit), (digit, kinds.get(digit, "mouse"), state["bars"])
        assert state["best"] == [digit]
        assert abs(sum(state["bars"]) - 1) < 1e-3 and max(state["bars"]) == state["bars"][digit]
        assert all(abs(w - p) < 0.02 for w, p in zip(state["widths"], state["bars"])), state["widths"]
        assert max(state["seen"]) == 255 and sum(v > 0 for v in state["seen"]) > 30
        if shots:
            Path(shots).mkdir(parents=True, exist_ok=True)
            browser.save_screenshot(str(Path(shots) / f"page-{digit}.png"))
    maps = browser.execute_script(
        "return [...document.querySelectorAll('#maps canvas')].map(c => Math.max(...c.getContext('2d')"
        ".getImageData(0, 0, 28, 28).data.filter((v, i) => i % 4 == 0)))")
    assert len(maps) == 6 and all(m == 255 for m in maps)  # six C1 maps drawn (each scaled to 255)
    clear.click()
    assert settled(browser)["state"] == "empty"
