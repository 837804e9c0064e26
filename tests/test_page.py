"""The `lenet serve` page in a real browser: Debian's Chromium driven by Playwright, as a person uses it.

Where no browser is installed these tests are skipped with the reason; CI installs Chromium and sets
LENET_BROWSER_TESTS=required, so there they fail instead of skipping.
"""

import math
import os
import shutil
import subprocess
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest
from helpers import start_serve

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
REQUIRED = os.environ.get("LENET_BROWSER_TESTS") == "required"

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - depends on the machine
    sync_playwright = None

missing = "playwright is not installed" if sync_playwright is None else None
if missing is None and not Path(CHROMIUM).exists():
    missing = "no Chromium at /usr/bin/chromium (apt-get install chromium)"
if missing and REQUIRED:
    raise RuntimeError(f"browser tests are required here, but {missing}")
pytestmark = [pytest.mark.slow, pytest.mark.skipif(missing is not None, reason=missing or "")]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`lenet serve` in its own process (the shipped model, --collect), on a free port."""
    home = tmp_path_factory.mktemp("serve")
    collect = home / "collected"
    process, url = start_serve(["--workers", "1", "--collect", str(collect), "--collect-limit", "1"], home)
    try:
        yield url, collect
    finally:
        workers = subprocess.run(
            ["pgrep", "-P", str(process.pid)], capture_output=True, text=True
        ).stdout.split()
        process.terminate()  # SIGTERM: a clean stop, as Ctrl-C
        assert process.wait(timeout=30) == 0
        assert process.stdout.read() == "Stopped.\n"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(Path(f"/proc/{pid}").exists() for pid in workers):
            time.sleep(0.2)
        assert [
            pid for pid in workers if Path(f"/proc/{pid}").exists()
        ] == []  # no preprocessing process left


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser, server):
    url, _ = server
    context = browser.new_context(viewport={"width": 900, "height": 720})
    opened = context.new_page()
    requested = []
    opened.on("request", lambda request: requested.append(request.url))
    opened.goto(url)
    opened.wait_for_function("document.getElementById('model').textContent.includes('test accuracy')")
    opened.requested = requested
    yield opened
    context.close()


STROKES = {  # in the canvas's own 280x280 pixels
    1: [[(150, 45), (140, 240)]],
    7: [[(70, 55), (215, 55), (120, 245)]],
    0: [[(140 + 65 * math.sin(a / 20 * math.pi), 140 - 95 * math.cos(a / 20 * math.pi)) for a in range(41)]],
}


def draw(page, strokes):
    box = page.locator("#pad").bounding_box()
    scale = box["width"] / 280
    for stroke in strokes:
        x, y = stroke[0]
        page.mouse.move(box["x"] + x * scale, box["y"] + y * scale)
        page.mouse.down()
        for x, y in stroke[1:]:
            page.mouse.move(box["x"] + x * scale, box["y"] + y * scale, steps=6)
        page.mouse.up()


def shown_label(page):
    """The label once the page has the answer for the finished drawing (the result is no longer busy:
    answers to the half-drawn digit, shown while drawing, do not count)."""
    page.wait_for_timeout(200)  # the last stroke's request is scheduled on pointerup
    page.wait_for_selector(".result[aria-busy='false']", timeout=15_000)
    page.wait_for_function(
        "document.getElementById('seen').complete && document.getElementById('seen').naturalWidth"
    )
    return page.locator("#label").text_content()


@pytest.mark.parametrize("digit", [1, 7, 0])
def test_drawing_a_digit_shows_the_label_bars_and_the_28x28_input(page, digit, tmp_path):
    draw(page, STROKES[digit])
    assert shown_label(page) == str(digit)
    assert page.locator("#seen").evaluate("image => [image.naturalWidth, image.naturalHeight]") == [28, 28]
    assert page.locator("#bars .bar").count() == 10
    assert page.locator("#bars .bar.top span").first.text_content() == str(digit)
    page.screenshot(path=str(tmp_path / "page.png"))  # for a person to look at when this fails


def test_clear_and_escape_reset_the_page(page):
    draw(page, STROKES[1])
    assert shown_label(page) == "1"
    page.click("#clear")
    assert page.locator("#label").text_content() == "–"
    draw(page, STROKES[7])
    assert shown_label(page) == "7"
    page.keyboard.press("Escape")
    assert page.locator("#label").text_content() == "–"


def test_uploading_a_file_uses_the_same_preprocessing(page, tmp_path):
    import random

    from drawing import draw_digit

    path = tmp_path / "four.png"
    draw_digit(4, random.Random(1)).save(path)
    page.set_input_files("#file", str(path))
    assert shown_label(page) == "4"


def test_collecting_a_drawing_writes_it_into_the_class_folder(page, server):
    _, folder = server
    draw(page, STROKES[7])
    shown_label(page)
    page.click("#collect-buttons button[data-label='7']")
    page.wait_for_function("document.getElementById('confidence').textContent === 'saved as 7'")
    saved = list(folder.glob("7/*.png"))
    assert len(saved) == 1 and saved[0].read_bytes().startswith(b"\x89PNG")
    button = page.locator("#collect-buttons button[data-label='7']")
    assert button.locator(".count").text_content() == "1 full"  # --collect-limit 1: no more for 7
    assert button.is_disabled() and "--collect-limit" in button.get_attribute("title")
    assert page.locator("#collect-buttons button[data-label='3'] .count").text_content() == "0"


def test_the_page_asks_nothing_of_other_servers(page, server):
    url, _ = server
    draw(page, STROKES[1])
    shown_label(page)
    origin = urlparse(url).netloc
    assert page.requested and all(
        urlparse(requested).netloc == origin
        for requested in page.requested
        if not requested.startswith(("data:", "blob:"))
    )


def test_a_phone_sized_screen_fits(browser, server):
    url, _ = server
    context = browser.new_context(viewport={"width": 375, "height": 740}, is_mobile=True, has_touch=True)
    phone = context.new_page()
    phone.goto(url)
    assert phone.evaluate("document.documentElement.scrollWidth") <= 375
    context.close()


def test_number_mode_reads_a_whole_number_with_boxes_inputs_and_bars(page, tmp_path):
    page.click("#mode-number")
    box = page.locator("#pad").bounding_box()
    scale = box["width"] / 840  # the wide pad is 840x280 canvas pixels
    assert abs(box["height"] * 3 - box["width"]) < 3
    for offset, digit in ((0, 1), (280, 7), (560, 0)):
        for stroke in STROKES[digit]:
            x, y = stroke[0]
            page.mouse.move(box["x"] + (x + offset) * scale, box["y"] + y * scale)
            page.mouse.down()
            for x, y in stroke[1:]:
                page.mouse.move(box["x"] + (x + offset) * scale, box["y"] + y * scale, steps=6)
            page.mouse.up()
    page.wait_for_timeout(200)
    page.wait_for_selector(".result[aria-busy='false']", timeout=15_000)
    page.wait_for_function("document.querySelectorAll('#digits img').length === 3")
    assert page.locator("#number").text_content() == "170"
    sizes = page.locator("#digits img").evaluate_all(
        "images => images.map(i => [i.naturalWidth, i.naturalHeight])"
    )
    assert sizes == [[28, 28]] * 3
    assert page.locator("#bars .bar").count() == 10
    # The boxes are drawn over the pad: some of the overlay's pixels are no longer transparent.
    assert page.evaluate(
        "(() => { const c = document.getElementById('boxes'); "
        "return c.getContext('2d').getImageData(0, 0, c.width, c.height).data.some((v, i) => i % 4 === 3 && v > 0); })()"
    )
    page.screenshot(path=str(tmp_path / "number.png"))
    page.click("#mode-digit")
    assert page.locator("#pad").evaluate("pad => [pad.width, pad.height]") == [280, 280]
