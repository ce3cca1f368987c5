"""Shared fixtures: the real data beside the checkout, and a live uvicorn server on 127.0.0.1."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``shared/data`` beside the repository checkout; fails loudly when it is missing."""
    path = (Path(__file__).resolve().parents[1] / ".." / "shared" / "data").resolve()
    assert path.is_dir(), f"shared data not found at {path}: tests need the real images beside the checkout"
    return path


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
