"""mnist-serve's page in a real browser: headless Chromium (Debian's `chromium`) driven by
Playwright's Python package, one browser and one server for the module.

Drawing a "1" and a "0" with mouse strokes, Clear, a picture file against mnist-predict, a
confusion cell and its images, and the heat map's numbers against the logit, all read from
the page. `pytest tests/test_serve_browser.py --screenshot docs/img/serve.png` also writes the
README's screenshot. Without Chromium or Playwright these tests skip, with one line saying how
to install them (bash .ci/run does, as root).
"""

import json
import math
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from serve_helpers import run_api, serving

from mnist_cli.cli import predict_command
from mnist_cli.nn.architecture import dense_params
from mnist_cli.nn.layers import inputs

DIGITS = Path(__file__).resolve().parents[1] / "docs" / "img" / "digits"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
INSTALL = (
    "browser tests skipped: they need Debian's chromium (as root: apt-get install -y "
    "chromium) and Playwright (make dev); bash .ci/run installs both"
)


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip(INSTALL)
    if not Path(CHROMIUM).exists():
        pytest.skip(INSTALL)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def softmax(trained_runs, mnist_splits):
    run, _ = trained_runs["softmax"]
    api = run_api(run, mnist_splits[1])
    with serving(api) as server:
        yield run, api, server


@pytest.fixture(scope="module")
def loaded(browser, softmax):
    """The page of the softmax run's server, its model loaded (one for the module), and the
    errors its script raises."""
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(error))
    page.goto(softmax[2].url)
    page.wait_for_selector("body[data-ready=true]")
    yield page, errors
    context.close()


@pytest.fixture
def page(loaded):
    """The page, cleared; the test fails if the page's script raised an error."""
    page, errors = loaded
    page.click("#clear")
    yield page
    assert not errors, errors


def stroke(page, points):
    """One mouse stroke through `points` (x, y) on the 280 × 280 pad."""
    box = page.locator("#pad").bounding_box()
    scale = box["width"] / 280
    at = [(box["x"] + x * scale, box["y"] + y * scale) for x, y in points]
    page.mouse.move(*at[0])
    page.mouse.down()
    for x, y in at[1:]:
        page.mouse.move(x, y)
    page.mouse.up()


def shown(page) -> str:
    """The top class, once the answer to the last stroke is shown."""
    page.wait_for_selector("body[data-state=shown]")
    return page.inner_text("#top-class")


ONE = [(140, 40 + 50 * i) for i in range(5)]  # a vertical stroke
ZERO = [  # an upright ellipse, 16 segments
    (140 + 65 * math.sin(math.pi * t / 8), 140 - 95 * math.cos(math.pi * t / 8))
    for t in range(17)
]


def test_draw_a_one_undo_a_stroke_then_clear(page):
    assert page.inner_text("#top-class") == ""  # nothing drawn: no prediction
    stroke(page, ONE)
    assert shown(page) == "1"
    one = page.evaluate("() => state.result.pixels")
    stroke(page, [(60, 200), (220, 200)])  # a bar across
    shown(page)
    assert page.evaluate("() => state.result.pixels") != one
    page.click("#undo")
    assert shown(page) == "1"
    assert page.evaluate("() => state.result.pixels") == one
    page.click("#clear")
    assert page.get_attribute("body", "data-state") == "empty"
    assert page.inner_text("#top-class") == ""
    assert page.inner_text("#top-value") == "no digit yet"
    assert page.locator("#bars button[disabled]").count() == 10
    assert page.get_attribute("#heat", "data-values") == ""


def test_draw_a_zero_and_the_heat_map_sums_to_the_logit(page, softmax):
    _, api, _ = softmax
    stroke(page, ZERO)
    assert shown(page) == "0"
    values = json.loads(page.get_attribute("#heat", "data-values"))  # what was painted
    bias = float(page.get_attribute("#rest", "data-value"))
    logit = float(page.get_attribute("#logit", "data-value"))
    assert len(values) == 784
    assert sum(values) + bias == pytest.approx(logit, abs=1e-9)
    # ... and they are the model's: W_0 ⊙ x for the pixels the page shows, b_0, z_0
    pixels = np.array(page.evaluate("() => state.result.pixels"), np.uint8)
    x = inputs(pixels[None], np.float64)[0]
    W, b = (a.astype(np.float64) for a in dense_params(api.network)[0])
    np.testing.assert_allclose(values, W[0] * x, atol=1e-12)
    assert bias == pytest.approx(b[0]) and logit == pytest.approx(W[0] @ x + b[0])
    assert "Exact" in page.inner_text("#legend")
    # a click on another bar explains that class instead; the top class stays
    page.click("#bars button[data-k='6']")
    page.wait_for_selector("#legend[data-k='6']")
    assert page.inner_text("#why-class") == "is it 6?" and shown(page) == "0"
    six = json.loads(page.get_attribute("#heat", "data-values"))
    np.testing.assert_allclose(six, W[6] * x, atol=1e-12)


def test_a_picture_file_is_predicted_as_mnist_predict_predicts_it(page, softmax):
    run = softmax[0]
    file = DIGITS / "two-blue-ink.png"
    page.set_input_files("#file", str(file))
    top = shown(page)
    line = CliRunner().invoke(predict_command, [str(run), str(file)]).output
    digit, probability = re.fullmatch(
        rf"{file}: (\d)  probability (\S+)\n", line
    ).groups()
    assert top == digit
    shown_probability = page.inner_text("#top-value").removeprefix("probability ")
    assert float(shown_probability) == pytest.approx(float(probability), abs=1.01e-4)


def test_a_confusion_cell_shows_its_images_and_one_opens(page, softmax):
    _, api, _ = softmax
    count = int(api.scores.confusion[4, 9])
    page.click("#confusion button[data-true='4'][data-pred='9']")
    page.wait_for_selector("#cell button")
    thumbnails = page.locator("#cell button")
    assert thumbnails.count() == min(count, 100)
    assert page.inner_text("#cell-title").startswith(
        f"true 4, predicted 9: {count} images"
    )
    first = int(thumbnails.first.get_attribute("data-index"))
    thumbnails.first.click()
    assert shown(page) == "9"
    pixels = page.evaluate("() => state.result.pixels")
    assert pixels == api.test.images[first].tolist()
    assert page.inner_text("#status") == f"test image {first}: true 4"


SEVEN = [(70, 60), (210, 60), (160, 150), (120, 245)]


def test_the_page_fits_a_laptop_screen_and_a_phone(page, request):
    stroke(page, SEVEN)
    assert shown(page) == "7"
    page.click("#confusion button[data-true='7'][data-pred='2']")
    page.wait_for_selector("#cell button")
    size = "() => [document.documentElement.scrollWidth, document.documentElement.scrollHeight]"
    assert page.evaluate(size) == [1280, 720], "one screen at 1280 × 720, no scrolling"
    screenshot = request.config.getoption("--screenshot")
    if screenshot:
        page.screenshot(path=screenshot)
    page.set_viewport_size({"width": 390, "height": 844})
    try:
        width, _ = page.evaluate(size)
        assert width == 390, "a phone scrolls down only, not sideways"
        pad = page.locator("#pad").bounding_box()
        assert pad["width"] >= 250 and pad["x"] + pad["width"] <= 390
    finally:
        page.set_viewport_size({"width": 1280, "height": 720})
