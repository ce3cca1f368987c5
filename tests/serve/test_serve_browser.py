"""The web page end to end in a real headless Chromium: upload a photo, get the cut-out, check the screenshot."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

CHROMIUM = "/usr/bin/chromium"
pytest.importorskip("fastapi", reason="the serve extra is not installed")
if not Path(CHROMIUM).exists():
    pytest.skip(f"needs Chromium at {CHROMIUM}: Debian's chromium package (sudo apt-get install chromium; "
                ".ci/run installs it)", allow_module_level=True)
playwright = pytest.importorskip("playwright.sync_api", reason="pip install playwright")

from PIL import Image  # noqa: E402

from greenless import Matter  # noqa: E402
from greenless.serve.app import create_app  # noqa: E402
from greenless.serve.settings import ServeSettings  # noqa: E402

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]


def test_drop_a_photo_and_download_the_cutout(live_server, data: Path, tmp_path: Path) -> None:
    photo = data / "photos" / "portrait-640.jpg"
    app = create_app(ServeSettings(), matter=Matter(ref_size=256))
    with live_server(app) as srv, playwright.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900}, accept_downloads=True)
            page.goto(srv.url + "/")
            assert page.title().startswith("greenless")

            # Colour background first, so the result area has a known colour to find in the screenshot.
            page.check('input[name="bg"][value="colour"]')
            page.fill("#colour", "#00ff00")
            page.set_input_files("#file", str(photo))
            page.wait_for_function("document.getElementById('result').naturalWidth > 0", timeout=60_000)
            assert page.inner_text("#status").startswith("Done")
            width, height = page.eval_on_selector("#result", "i => [i.naturalWidth, i.naturalHeight]")
            assert (width, height) == Image.open(photo).size

            shot = tmp_path / "page.png"
            page.locator("#result").screenshot(path=str(shot))
            pixels = np.asarray(Image.open(shot).convert("RGB")).astype(int)
            assert pixels.std() > 5, "the result area of the screenshot is blank"
            green = (pixels[:, :, 1] > 150) & (pixels[:, :, 0] < 100) & (pixels[:, :, 2] < 100)
            photo_green = np.asarray(Image.open(photo).convert("RGB")).astype(int)
            photo_green = ((photo_green[:, :, 1] > 150) & (photo_green[:, :, 0] < 100) & (photo_green[:, :, 2] < 100))
            assert green.mean() > photo_green.mean() + 0.01, "the chosen green background does not show"

            # Switch to transparent: a new request, an RGBA result, downloadable as PNG.
            first_src = page.get_attribute("#result", "src")
            page.check('input[name="bg"][value="transparent"]')
            page.wait_for_function(f"document.getElementById('result').src !== {first_src!r} && "
                                   "document.getElementById('result').naturalWidth > 0", timeout=60_000)
            with page.expect_download() as info:
                page.click("#download")
            saved = tmp_path / "download.png"
            info.value.save_as(saved)
            rgba = Image.open(saved)
            assert rgba.mode == "RGBA" and rgba.size == Image.open(photo).size

            # Errors reach the page as a message, not a broken image.
            garbage = tmp_path / "garbage.jpg"
            garbage.write_bytes(b"this is not a jpeg" * 100)
            page.set_input_files("#file", str(garbage))
            page.wait_for_function("document.getElementById('status').className === 'error'", timeout=30_000)
            assert "decode" in page.inner_text("#status")
            # ... and the previous result and its Download button are gone, not left looking like this photo's
            assert page.get_attribute("#result", "src") is None
            assert page.is_hidden("#download")
        finally:
            browser.close()
