"""The web demo end to end in a real headless Chromium (Debian's /usr/bin/chromium driven by Playwright), with its
default model (the embedded demo model): upload a synthetic shape clip, ask what it was trained to answer, and see
the right answer, the key-frame gallery, the score plot and the speed line. The page is saved as a screenshot under
artifacts/ (the path is printed)."""

import os
import random
from pathlib import Path

import pytest
from test_space import app_server

playwright_api = pytest.importorskip("playwright.sync_api", reason="needs playwright: pip install -e '.[dev]'")

from mobilevideogpt.demo import DEMO_MODEL_DIR
from mobilevideogpt.tiny import write_video
from mobilevideogpt.training.synth import FPS, make_scene, questions, render
from transformers import AutoConfig

CHROMIUM = Path(os.environ.get("MVGPT_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
SCREENSHOT = Path(__file__).resolve().parents[1] / "artifacts" / "space-browser.png"


@pytest.fixture(scope="module")
def chromium() -> Path:
    """Debian's Chromium (`make test` installs it with apt). CI must have it; elsewhere the test is skipped."""
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"CI must install Chromium at {CHROMIUM} (make test does: apt-get install chromium)")
        pytest.skip(f"no Chromium at {CHROMIUM}; `apt-get install chromium` installs it")
    return CHROMIUM


def test_upload_ask_and_see_answer_frames_and_speed(chromium, tmp_path):
    rng = random.Random("browser")
    scene = make_scene(rng)
    _, question, expected = next(item for item in questions(scene, rng) if item[0] == "direction")
    video = write_video(tmp_path / "shapes.mp4", fps=FPS, frames=render(scene))
    config = AutoConfig.from_pretrained(DEMO_MODEL_DIR, trust_remote_code=True)
    with app_server(tmp_path / "cache") as (url, _), playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url)
            notice = page.locator("#model-notice")
            notice.get_by_text("Embedded demo model").wait_for(timeout=30_000)
            assert "synthetic clips of coloured shapes" in notice.inner_text()

            page.locator("#video input[type=file]").set_input_files(str(video))
            page.locator("#video video").wait_for(timeout=30_000)  # the upload is shown in the player
            page.locator("#question textarea").fill(question)
            page.locator("#ask").click()

            speed = page.locator("#speed")
            speed.get_by_text("tokens/s").wait_for(timeout=120_000)
            line = speed.inner_text()
            tokens = f"{config.visual_tokens_per_video} visual tokens"
            assert "first token" in line and tokens in line and "cpu · float32" in line, line

            chat = page.locator("#chat")
            assert question in chat.inner_text()
            answer = chat.locator("[data-testid='bot']").last.inner_text().strip()
            assert answer == expected, (question, answer)

            gallery = page.locator("#frames")
            assert gallery.locator("img").count() == config.num_frames
            assert gallery.get_by_text("★ #").count() == config.num_chunks * config.frames_per_chunk
            assert page.locator("#scores").locator("canvas, svg").count() >= 1

            # open the settings, so the screenshot shows them and the read-only frame count
            page.locator("#settings").get_by_text("Settings", exact=True).click()
            page.get_by_text("Fixed by the architecture").wait_for()
            SCREENSHOT.parent.mkdir(exist_ok=True)
            page.screenshot(path=str(SCREENSHOT), full_page=True)
            print(f"screenshot: {SCREENSHOT}")
        finally:
            browser.close()
