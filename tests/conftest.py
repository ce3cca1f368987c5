"""Shared fixtures: the test data in tests/fixtures (and ../shared when present), the tiny training set, a CLI runner,
a live HTTP server."""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import ModuleType
from typing import Any, Iterator

import pytest

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"


SHARED = (REPO / ".." / "shared").resolve()


def load_script(name: str) -> ModuleType:
    """``scripts/NAME.py`` imported as a module, registered in ``sys.modules`` (dataclasses look themselves up
    there) and with scripts/ on the path (scripts import their neighbours)."""
    if str(REPO / "scripts") not in sys.path:
        sys.path.insert(0, str(REPO / "scripts"))
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None, name
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def data() -> Path:
    """The test data in the repository, ``tests/fixtures/data``: the four labelled portraits, two photos, three
    backgrounds and two short clips, laid out like the shared set (sources and licences in its README.md)."""
    return FIXTURES / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The full shared data set, ``../shared/data`` beside the clone, for the tests that want more than the
    fixtures (every clip, the full-size photos); they are skipped, with this reason, on a clone without it."""
    path = SHARED / "data"
    if not path.is_dir():
        pytest.skip(f"needs the shared data set at {path} (not in the repository; the fixtures cover the rest)")
    return path


@pytest.fixture(scope="session")
def reference_model() -> Path:
    """The reference selfie-segmentation model: the packaged one, Google's model derived from its own file, which
    matches the shared third-party conversion within 1e-4 (see tests/fixtures/data/README.md)."""
    from greenless.pipeline.guide import packaged_segmenter_path

    return packaged_segmenter_path()


@pytest.fixture(scope="session")
def shared_reference_model() -> Path:
    """The shared conversion of the reference model, ``../shared/models/selfie_segmentation.onnx``; skips without it."""
    path = SHARED / "models" / "selfie_segmentation.onnx"
    if not path.is_file():
        pytest.skip(f"needs the shared reference model at {path} (not in the repository)")
    return path


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository root (for examples/ and the packaged weights)."""
    return REPO


@pytest.fixture(scope="session")
def unguided_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small unguided 3-channel network (the paper's architecture, IBNorm, on MobileNetV2; random weights) as
    ``unguided.onnx`` with its card beside it, and ``unguided.safetensors``: the unguided path's weights for
    tests, now that the packaged modnet-paper ships as a card and a recipe only (its mattes are not a
    quality claim)."""
    import torch

    from greenless.export import export_onnx
    from greenless.model import build_model
    from greenless.model.checkpoint import save_weights

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("unguided")
    model = build_model({"encoder": "mobilenetv2", "hr_channels": 8})
    card = {"name": "test-unguided", "ref_size": 256}
    save_weights(model, folder / "unguided.safetensors", card, half=False)
    export_onnx(model, folder / "unguided.onnx", {**card, "model": model.config.to_dict()})
    return folder / "unguided.onnx"


@pytest.fixture(scope="session")
def tiny_set() -> Path:
    """A few-KB training set (fg/, alpha/, image/, bg/) cut from the pseudo-labelled data."""
    return FIXTURES / "tiny_set"


def run_greenless(*args: str, cwd: Path | None = None, stdin: bytes | None = None,
                  timeout: float = 300, memory_limit: int | None = None,
                  stdout: Any = None) -> subprocess.CompletedProcess:
    """Run ``python -m greenless ARGS`` with this checkout's src/ first on the path; bytes in, bytes out.

    ``memory_limit`` (bytes) caps the child's address space (RLIMIT_AS), so a run that would need far
    more memory than a photo fails there instead of slowly swamping the test machine. ``stdout`` (an open
    file) replaces the captured stdout, e.g. /dev/full; stderr is captured either way.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO / "src") + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("OMP_NUM_THREADS", "2")

    def limit_memory() -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))

    return subprocess.run([sys.executable, "-m", "greenless", *args], cwd=cwd, input=stdin,
                          stdout=stdout if stdout is not None else subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=timeout, env=env, stdin=None if stdin is not None else subprocess.DEVNULL,
                          preexec_fn=limit_memory if memory_limit is not None else None)


class LiveServer:
    """A uvicorn server running ``app`` in a thread on a free loopback port."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> "LiveServer":
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert self.thread.is_alive(), "uvicorn exited during startup"
            assert time.monotonic() < deadline, "uvicorn did not start within 30 s"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)
        self.sock.close()


@pytest.fixture(scope="session")
def live_server() -> Iterator[type[LiveServer]]:
    """The ``LiveServer`` class, for tests that start a server with their own settings."""
    yield LiveServer


def run_main(args: list, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Run the CLI in-process (faster than a subprocess); returns (exit code, stderr)."""
    from greenless.cli import main

    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, capsys.readouterr().err


def wait_until_healthy(url: str, proc: Any, seconds: float, output: Any = None) -> None:
    """Poll ``url``/healthz until a ``greenless serve`` subprocess answers 200; fail with its output if it exits
    or does not answer within ``seconds`` (``output`` gives that output, default its stdout)."""
    import time

    import httpx

    deadline = time.monotonic() + seconds
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert proc.poll() is None, output() if output else proc.stdout.read().decode()
        assert time.monotonic() < deadline, f"server did not answer within {seconds:.0f} s"
        time.sleep(0.2)
