"""Teach on the page in Chromium, as a person does it: draw and save digits, press Teach, watch the progress,
read the before and after figures, see a digit misread before read right after, and Undo.

The server runs a model trained on tests/idx.py's synthetic digits (bars), which misreads pen-drawn digits,
with a larger synthetic set as its dataset, so one epoch of teaching takes seconds and learns the drawings.
"""

import random

import pytest
from drawing import draw_digit
from helpers import start_serve
from idx import write_idx_set
from test_page import CHROMIUM, STROKES, draw, missing, shown_label  # noqa: F401 - skips as test_page does

pytestmark = [pytest.mark.slow, pytest.mark.skipif(missing is not None, reason=missing or "")]


@pytest.fixture(scope="module")
def teaching_server(tmp_path_factory, trained_checkpoint):
    home = tmp_path_factory.mktemp("teach-serve")
    data = write_idx_set(home / "data", train_count=20_000)
    collect = home / "collected"
    rng = random.Random(1)
    for digit in range(10):  # saved earlier: eight pen-drawn digits of each class
        (collect / str(digit)).mkdir(parents=True)
        for index in range(8):
            draw_digit(digit, rng).save(collect / str(digit) / f"20260101-0000{index:02d}-earlier.png")
    arguments = [
        str(trained_checkpoint),
        "--workers",
        "1",
        "--collect",
        str(collect),
        "--data-dir",
        str(data),
        "--checkpoint-dir",
        str(home / "checkpoints"),
    ]
    process, url = start_serve(arguments, home)
    try:
        yield url, home
    finally:
        process.terminate()
        assert process.wait(timeout=60) == 0


def test_teach_on_the_page_then_undo(teaching_server, tmp_path):
    from playwright.sync_api import sync_playwright

    url, home = teaching_server
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 900, "height": 900})
        page.goto(url)
        page.wait_for_selector("#teach-start")
        for _ in range(2):  # draw and save two 1s of one's own
            draw(page, STROKES[1])
            shown_label(page)
            page.click("#collect-buttons button[data-label='1']")
            page.wait_for_function("document.getElementById('confidence').textContent === 'saved as 1'")
        assert page.locator("#collect-buttons button[data-label='1'] .count").text_content() == "10"
        draw(page, STROKES[1])
        before = shown_label(page)
        assert before != "1"  # the model trained on bars misreads a drawn 1

        page.click("#teach-start")
        page.wait_for_function("document.getElementById('teach-start').disabled")
        page.wait_for_function(
            "document.getElementById('teach-steps').textContent.startsWith('step ') || "
            "document.getElementById('teach-start').disabled === false",
            timeout=120_000,
        )
        assert " of " in page.locator("#teach-steps").text_content(), page.locator("#teach").text_content()
        page.wait_for_function(
            "['Done: the taught model answers now.', 'Done, but the taught model was kept out.']"
            ".includes(document.getElementById('teach-status').textContent)",
            timeout=240_000,
        )
        assert page.locator("#teach-status").text_content() == "Done: the taught model answers now."
        cells = page.locator("#teach-table td").all_text_contents()
        assert (
            cells[0].startswith("your held-out drawings (11, each read 7 ways)")
            and cells[3] == "MNIST test set"
        )
        assert all(cell.endswith("%") for cell in cells[1:3] + cells[4:6])
        assert page.locator("#teach-picture rect").count() == 4
        assert shown_label(page) == "1"  # the same drawing, read again by the taught model
        page.screenshot(path=str(tmp_path / "taught.png"))  # for a person to look at when this fails
        assert "taught here" in page.locator("#model").text_content()

        page.click("#teach-undo")
        page.wait_for_function("document.getElementById('teach-status').textContent.startsWith('Undone')")
        page.wait_for_timeout(300)
        assert shown_label(page) == before
        browser.close()
    assert (home / "checkpoints" / "run-1" / "last.pt").is_file()
