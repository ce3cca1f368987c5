"""The HTTP service over real HTTP on 127.0.0.1: PNG results, every error path, limits, queue and timeout."""

from __future__ import annotations

import http.client
import io
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed")
import httpx  # noqa: E402
from PIL import Image  # noqa: E402

from greenless import Matter  # noqa: E402
from conftest import wait_until_healthy  # noqa: E402
from greenless.serve.app import create_app  # noqa: E402
from greenless.serve.settings import ServeSettings  # noqa: E402

REF = 128  # small network input keeps the tests fast; the server logic is the same at any size


@pytest.fixture(scope="module")
def matter() -> Matter:
    return Matter(ref_size=REF)


@pytest.fixture(scope="module")
def portrait(data: Path) -> Path:
    images = sorted((data / "portraits" / "image").glob("*.jpg"))
    assert images, "no portraits in the test data"
    return images[0]


@pytest.fixture(scope="module")
def server(live_server, matter: Matter):
    settings = ServeSettings(max_upload_mb=2.0, max_pixels=4_000_000, timeout=60)
    with live_server(create_app(settings, matter=matter)) as srv:
        yield srv


def png(response: httpx.Response) -> np.ndarray:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    assert response.content[:8] == b"\x89PNG\r\n\x1a\n"
    return np.asarray(Image.open(io.BytesIO(response.content)))


def expected_alpha8(matter: Matter, path: Path) -> np.ndarray:
    rgb = np.asarray(Image.open(path).convert("RGB"))
    return (np.clip(matter.matte(rgb), 0, 1) * 255 + 0.5).astype(np.uint8), rgb


def error(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    message = response.json()["error"]
    assert isinstance(message, str) and message
    return message


def test_healthz_docs_and_page(server) -> None:
    health = httpx.get(f"{server.url}/healthz").json()
    assert health["status"] == "ok" and health["engine"] == "onnx" and health["ref_size"] == REF
    spec = httpx.get(f"{server.url}/openapi.json").json()
    body = spec["paths"]["/v1/matte"]["post"]["requestBody"]["content"]
    assert "multipart/form-data" in body and "image/*" in body
    assert "swagger" in httpx.get(f"{server.url}/docs").text.lower()
    page = httpx.get(f"{server.url}/")
    assert page.status_code == 200 and "v1/matte" in page.text
    assert "http://" not in page.text and "https://" not in page.text  # self-contained: no CDN, no fonts


def test_multipart_rgba_is_the_matte_of_a_real_portrait(server, matter: Matter, portrait: Path) -> None:
    with open(portrait, "rb") as fh:
        response = httpx.post(f"{server.url}/v1/matte", files={"file": (portrait.name, fh, "image/jpeg")}, timeout=60)
    rgba = png(response)
    alpha8, rgb = expected_alpha8(matter, portrait)
    assert rgba.shape == (*rgb.shape[:2], 4)
    assert np.abs(rgba[:, :, 3].astype(int) - alpha8).max() <= 1
    opaque = alpha8 == 255  # colours are foreground estimates; fully opaque pixels keep the photo's own
    if opaque.any():
        assert np.abs(rgba[:, :, :3][opaque].astype(int) - rgb[opaque]).mean() < 2


def test_raw_body_alpha_with_query_options(server, matter: Matter, portrait: Path) -> None:
    response = httpx.post(f"{server.url}/v1/matte", params={"output": "alpha"}, content=portrait.read_bytes(),
                          headers={"content-type": "image/jpeg"}, timeout=60)
    alpha = png(response)
    alpha8, _ = expected_alpha8(matter, portrait)
    assert alpha.ndim == 2 and np.abs(alpha.astype(int) - alpha8).max() <= 1


def test_ref_size_option_changes_the_network_input(server, portrait: Path) -> None:
    url = f"{server.url}/v1/matte"
    small = png(httpx.post(url, params={"output": "alpha", "ref_size": 64}, content=portrait.read_bytes(), timeout=60))
    default = png(httpx.post(url, params={"output": "alpha"}, content=portrait.read_bytes(), timeout=60))
    assert small.shape == default.shape and not np.array_equal(small, default)


def test_refine_option_picks_the_detail_stage(server, matter: Matter, portrait: Path) -> None:
    """refine=none gives the network's matte alone (what Matter(refine="none") gives); band is the photo
    default; anything else is a 400 naming the choices."""
    url = f"{server.url}/v1/matte"
    plain = png(httpx.post(url, params={"output": "alpha", "refine": "none"}, content=portrait.read_bytes(), timeout=60))
    default = png(httpx.post(url, params={"output": "alpha"}, content=portrait.read_bytes(), timeout=60))
    rgb = np.asarray(Image.open(portrait).convert("RGB"))
    alone = (np.clip(Matter(ref_size=REF, refine="none").matte(rgb), 0, 1) * 255 + 0.5).astype(np.uint8)
    assert np.abs(plain.astype(int) - alone).max() <= 1
    assert matter.refine == "band" and np.abs(default.astype(int) - plain).max() > 50
    bad = httpx.post(url, params={"refine": "sharpen"}, content=portrait.read_bytes(), timeout=60)
    assert bad.status_code == 400 and "band, none" in bad.json()["error"]


def test_thin_images_are_matted_at_full_size(server, data: Path) -> None:
    """A 255x1 row and, at the largest ref_size, a 1x2047 column of a real photo come back at their size.

    Before the network input's long side was bounded the row peaked at 9.3 GB in the server and the
    column was a 500 (OpenCV asked for 25.7 GB)."""
    photo = Image.open(data / "photos" / "portrait-1280.jpg").convert("RGB")
    url = f"{server.url}/v1/matte"
    for strip, params in ((photo.crop((0, 400, 255, 401)), {"output": "alpha"}),
                          (photo.crop((400, 0, 401, 1)).resize((1, 2047)),
                           {"output": "alpha", "ref_size": ServeSettings().max_ref_size})):
        body = io.BytesIO()
        strip.save(body, format="PNG")
        alpha = png(httpx.post(url, params=params, content=body.getvalue(), timeout=60))
        assert alpha.shape == (strip.height, strip.width)


def test_composite_follows_the_background_colour(server, portrait: Path) -> None:
    """Over black and over green the results differ by exactly (1 - alpha) * 255 in the green channel."""
    url = f"{server.url}/v1/matte"
    data = portrait.read_bytes()
    over_black = png(httpx.post(url, files={"file": data}, data={"background": "#000000"}, timeout=60))
    over_green = png(httpx.post(url, files={"file": data}, data={"output": "composite", "background": "00ff00"},
                                timeout=60))
    alpha = png(httpx.post(url, files={"file": data}, data={"output": "alpha"}, timeout=60)).astype(float) / 255
    assert over_black.shape == over_green.shape == (*alpha.shape, 3)
    diff = over_green[:, :, 1].astype(float) - over_black[:, :, 1]
    assert np.abs(diff - (1 - alpha) * 255).mean() < 2.0
    assert np.array_equal(over_green[:, :, 0], over_black[:, :, 0])


def test_foreground_and_background_image(server, data: Path, portrait: Path) -> None:
    url = f"{server.url}/v1/matte"
    fg = png(httpx.post(url, files={"file": portrait.read_bytes()}, data={"output": "foreground"}, timeout=60))
    assert fg.ndim == 3 and fg.shape[2] == 3
    bg_path = data / "backgrounds" / "sky.jpg"
    out = png(httpx.post(url, files={"file": portrait.read_bytes(), "background_image": bg_path.read_bytes()},
                         timeout=60))
    assert out.shape[:2] == fg.shape[:2] and out.shape[2] == 3


def test_upload_over_the_size_limit_is_413(server, portrait: Path) -> None:
    big = portrait.read_bytes() * 8  # > 2 MB
    assert len(big) > 2 * 1024 * 1024
    assert "limit" in error(httpx.post(f"{server.url}/v1/matte", content=big), 413)


def test_chunked_upload_over_the_size_limit_is_413(server) -> None:
    """No Content-Length: the body is counted while it streams in."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    chunks = (b"\0" * 65536 for _ in range(64))  # 4 MB
    conn.request("POST", "/v1/matte", body=chunks, headers={"content-type": "image/png"}, encode_chunked=True)
    response = conn.getresponse()
    assert response.status == 413
    assert b"limit" in response.read()
    conn.close()


def test_decompression_bomb_is_413(server, tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.png"
    Image.new("L", (4000, 4000)).save(bomb)  # 16 MP, a few KB on disk
    assert bomb.stat().st_size < 100_000
    assert "pixels" in error(httpx.post(f"{server.url}/v1/matte", content=bomb.read_bytes()), 413)


def test_garbage_and_truncated_images_are_415(server, portrait: Path) -> None:
    url = f"{server.url}/v1/matte"
    assert "decode" in error(httpx.post(url, content=os.urandom(5000)), 415)
    assert "decode" in error(httpx.post(url, files={"file": ("x.jpg", b"not an image", "image/jpeg")}), 415)
    truncated = portrait.read_bytes()[:20000]
    error(httpx.post(url, content=truncated, headers={"content-type": "image/jpeg"}), 415)


@pytest.mark.parametrize("params, needle", [
    ({"output": "sepia"}, "output"),
    ({"ref_size": "big"}, "ref_size"),
    ({"ref_size": "8"}, "ref_size"),
    ({"ref_size": "100000"}, "ref_size"),
    ({"background": "not-a-colour"}, "background"),
    ({"output": "alpha", "background": "#00ff00"}, "composite"),
])
def test_bad_options_are_400(server, portrait: Path, params: dict, needle: str) -> None:
    assert needle in error(httpx.post(f"{server.url}/v1/matte", params=params, content=portrait.read_bytes()), 400)


def test_bad_form_option_empty_body_and_missing_part_are_400(server, portrait: Path) -> None:
    url = f"{server.url}/v1/matte"
    assert "output" in error(httpx.post(url, files={"file": portrait.read_bytes()}, data={"output": "x"}), 400)
    assert "empty" in error(httpx.post(url, content=b""), 400)
    assert "'file'" in error(httpx.post(url, files={"photo": portrait.read_bytes()}), 400)
    bad = httpx.post(url, content=b"garbage", headers={"content-type": "multipart/form-data; boundary=xyz"})
    assert "multipart" in error(bad, 400)
    assert error(httpx.get(f"{server.url}/nowhere"), 404)


class GatedMatter:
    """A real Matter whose ``matte`` waits until the test opens the gate: makes a request slow on demand."""

    def __init__(self, inner: Matter) -> None:
        self.inner, self.weights, self.engine, self.ref_size = inner, inner.weights, inner.engine, inner.ref_size
        self.entered = threading.Event()
        self.gate = threading.Event()
        self.calls = 0

    def matte(self, image: np.ndarray) -> np.ndarray:
        self.calls += 1
        self.entered.set()
        assert self.gate.wait(30)
        return self.inner.matte(image)


def _post_in_thread(url: str, data: bytes, results: list) -> threading.Thread:
    thread = threading.Thread(target=lambda: results.append(httpx.post(url, content=data, timeout=60)))
    thread.start()
    return thread


def test_full_queue_is_503_and_queued_requests_finish(live_server, matter: Matter, portrait: Path) -> None:
    gated = GatedMatter(matter)
    settings = ServeSettings(max_concurrency=1, queue_size=1, timeout=60)
    data = portrait.read_bytes()
    with live_server(create_app(settings, matter=gated)) as srv:
        url = f"{srv.url}/v1/matte"
        results: list = []
        first = _post_in_thread(url, data, results)
        assert gated.entered.wait(30)
        second = _post_in_thread(url, data, results)  # waits in the queue
        deadline = time.monotonic() + 10
        while httpx.get(f"{srv.url}/healthz").json()["waiting"] < 1:
            assert time.monotonic() < deadline, "second request never queued"
            time.sleep(0.02)
        health = httpx.get(f"{srv.url}/healthz").json()
        assert (health["active"], health["waiting"]) == (1, 1)
        busy = httpx.post(url, content=data, timeout=30)
        assert "busy" in error(busy, 503) and busy.headers["retry-after"] == "1"
        gated.gate.set()
        first.join(60)
        second.join(60)
        assert [r.status_code for r in results] == [200, 200]
        assert gated.calls == 2
        health = httpx.get(f"{srv.url}/healthz").json()
        assert (health["active"], health["waiting"]) == (0, 0)


def test_no_queue_means_503_at_once(live_server, matter: Matter, portrait: Path) -> None:
    gated = GatedMatter(matter)
    with live_server(create_app(ServeSettings(max_concurrency=1, queue_size=0), matter=gated)) as srv:
        results: list = []
        first = _post_in_thread(f"{srv.url}/v1/matte", portrait.read_bytes(), results)
        assert gated.entered.wait(30)
        started = time.monotonic()
        error(httpx.post(f"{srv.url}/v1/matte", content=portrait.read_bytes(), timeout=30), 503)
        assert time.monotonic() - started < 5
        gated.gate.set()
        first.join(60)
        assert results[0].status_code == 200


def test_slow_request_is_504_and_its_slot_comes_back(live_server, matter: Matter, portrait: Path) -> None:
    gated = GatedMatter(matter)
    with live_server(create_app(ServeSettings(timeout=3.0, max_concurrency=1, queue_size=4), matter=gated)) as srv:
        assert "timeout" in error(httpx.post(f"{srv.url}/v1/matte", content=portrait.read_bytes(), timeout=30), 504)
        assert httpx.get(f"{srv.url}/healthz").json()["active"] == 1  # the thread is still running
        gated.gate.set()
        deadline = time.monotonic() + 30
        while httpx.get(f"{srv.url}/healthz").json()["active"]:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        small = io.BytesIO()
        Image.open(portrait).resize((64, 48)).save(small, "PNG")  # tiny: well within 3 s even on a busy machine
        png(httpx.post(f"{srv.url}/v1/matte", content=small.getvalue(), timeout=30))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_cli_serve_with_two_workers(portrait: Path) -> None:
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in [str(Path(__file__).parents[2] / "src"),
                                                                    os.environ.get("PYTHONPATH", "")] if p)}
    proc = subprocess.Popen([sys.executable, "-m", "greenless", "serve", "--port", str(port), "--workers", "2",
                             "--ref-size", str(REF), "--log-level", "warning"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_until_healthy(f"http://127.0.0.1:{port}", proc, 60)
        alpha = png(httpx.post(f"http://127.0.0.1:{port}/v1/matte?output=alpha", content=portrait.read_bytes(),
                               timeout=60))
        assert alpha.ndim == 2
    finally:
        proc.terminate()
        proc.wait(30)


def test_cli_serve_rejects_missing_weights(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2] / "src")}
    result = subprocess.run([sys.executable, "-m", "greenless", "serve", "--weights", str(tmp_path / "nope.onnx")],
                            capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "nope.onnx" in result.stderr


@pytest.mark.parametrize("ref_size", ["4096", "100000", "16"])
def test_cli_serve_bounds_ref_size_as_requests_are(tmp_path: Path, ref_size: str) -> None:
    """``serve --ref-size`` takes what a request's ref_size may be (32 to max_ref_size), else one line.

    The missing weights file makes sure no server starts whatever happens: the bound must be the error."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2] / "src")}
    result = subprocess.run([sys.executable, "-m", "greenless", "serve", "--ref-size", ref_size,
                             "--weights", str(tmp_path / "nope.onnx")],
                            capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "--ref-size" in result.stderr, result.stderr
