"""The page's Inside view in a real browser (Debian's Chromium through Playwright, as tests/test_page.py):
draw, and see every layer's maps, the bars, the scores and the attribution change; hover a map for its
kernel, click a score for why that class."""

import os

import pytest
from helpers import start_serve
from test_page import CHROMIUM, STROKES, draw, missing, sync_playwright

pytestmark = [pytest.mark.slow, pytest.mark.skipif(missing is not None, reason=missing or "")]
SHOTS = os.environ.get("LENET_SCREENSHOTS")  # a folder to keep the screenshots in, to look at them


@pytest.fixture(scope="module")
def inside(tmp_path_factory):
    """The served page (the shipped model) in Chromium, the Inside view open."""
    process, url = start_serve(["--workers", "0"], tmp_path_factory.mktemp("serve"))
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 900, "height": 1400})
            page.goto(url)
            page.wait_for_function("document.getElementById('model').textContent.includes('test accuracy')")
            page.click("#inside summary")
            yield page
            browser.close()
    finally:
        process.terminate()
        process.wait(timeout=30)


def pixels(page, selector):
    """The RGBA bytes of every canvas `selector` matches, as one list (to see them change)."""
    return page.eval_on_selector_all(
        selector,
        "canvases => canvases.flatMap(c => Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data))",
    )


def updated(page, count):
    """Wait until the view has drawn at least `count` answers and none is pending."""
    page.wait_for_function(f"window.insideTimes.length >= {count}", timeout=15_000)
    page.wait_for_timeout(300)


def test_drawing_updates_every_layer_and_the_attribution(inside, tmp_path):
    page = inside
    assert page.locator("#inside canvas[data-layer='Conv1']").count() == 6
    assert page.locator("#inside canvas[data-layer='Pool1']").count() == 6
    assert page.locator("#inside canvas[data-layer='Conv2']").count() == 16
    assert page.locator("#inside canvas[data-layer='Pool2']").count() == 16
    draw(page, STROKES[7])
    updated(page, 1)
    seen = {name: pixels(page, f"#inside canvas[data-layer='{name}']") for name in ("Conv1", "Pool2", "FC1")}
    why_seven = pixels(page, "#inside-why")
    assert all(any(value > 0 for value in values) for values in seen.values())  # maps drawn, not blank
    assert page.locator("#inside-scores button.answer span").first.text_content() == "7"
    assert page.locator("#why-caption").text_content().startswith("why 7 (the answer)")
    page.screenshot(path=str(tmp_path / "seven.png"), full_page=True)

    page.click("#clear")
    count = page.evaluate("window.insideTimes.length")
    draw(page, STROKES[0])
    updated(page, count + 1)
    assert page.locator("#inside-scores button.answer span").first.text_content() == "0"
    for name, before in seen.items():
        assert pixels(page, f"#inside canvas[data-layer='{name}']") != before, name
    assert pixels(page, "#inside-why") != why_seven
    page.screenshot(
        path=str(SHOTS and os.path.join(SHOTS, "inside-zero.png") or tmp_path / "zero.png"), full_page=True
    )


def test_hovering_a_map_shows_its_kernel_and_clicking_a_score_shows_why(inside):
    page = inside
    page.hover("#inside canvas[data-layer='Conv2'][data-index='3']")
    page.wait_for_function("document.querySelectorAll('#kernel-cells canvas').length === 6")
    assert page.locator("#kernel-caption").text_content().startswith("Conv2 map 3's kernel: 5×5 over each of")
    page.hover("#inside canvas[data-layer='Pool1'][data-index='2']")
    page.wait_for_function("document.querySelectorAll('#kernel-cells canvas').length === 1")
    assert "(Pool1 map 2 is the 2×2 max of it)" in page.locator("#kernel-caption").text_content()

    before = pixels(page, "#inside-why")
    page.click("#inside-scores button[data-label='6']")
    page.wait_for_function("document.getElementById('why-caption').textContent.startsWith('why 6 (clicked)')")
    assert pixels(page, "#inside-why") != before
    if SHOTS:
        page.screenshot(path=os.path.join(SHOTS, "inside-why-6.png"), full_page=True)
