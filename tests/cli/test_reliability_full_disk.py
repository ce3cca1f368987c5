"""Reliability: a full disk fails one file, not the job, in ``greenless matte`` and in ``greenless batch --ray``'s
actors alike, and leaves no temporary file behind.

The disk is made full for one output only: the file object the atomic writer opens for that output's
temporary file raises ``OSError(ENOSPC)`` on write, exactly what a full file system gives.
"""

from __future__ import annotations

import builtins
import errno
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import REPO, run_main

VICTIM = "portrait-1280"


@pytest.fixture
def photos(data: Path, tmp_path: Path) -> Path:
    """Three real photos (the two fixture photos and the example), shrunk so the test stays fast."""
    folder = tmp_path / "in"
    folder.mkdir()
    for src in [*sorted((data / "photos").glob("*.jpg")), REPO / "examples" / "astronaut.jpg"]:
        im = Image.open(src).convert("RGB")
        im.thumbnail((128, 128))
        im.save(folder / src.name, quality=90)
    return folder


class _FullFile:
    """A writable file whose writes fail as on a full disk."""

    def __init__(self, handle) -> None:
        self.handle = handle

    def write(self, data: bytes) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __enter__(self) -> "_FullFile":
        return self

    def __exit__(self, *exc: object) -> None:
        self.handle.close()


@pytest.fixture
def disk_full_for_victim(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Writes of the temporary file of any output named after VICTIM fail with ENOSPC; returns the names hit."""
    real_fdopen, real_open = os.fdopen, builtins.open
    hit: list[str] = []

    def full(name: str, handle):
        if name.startswith(f".{VICTIM}") and name.endswith(".tmp"):
            hit.append(name)
            return _FullFile(handle)
        return handle

    def fdopen(fd: int, *args, **kwargs):
        return full(os.path.basename(os.readlink(f"/proc/self/fd/{fd}")), real_fdopen(fd, *args, **kwargs))

    def open_(file, *args, **kwargs):  # a writer that opens its temporary file by name
        handle = real_open(file, *args, **kwargs)
        return full(os.path.basename(file), handle) if isinstance(file, (str, os.PathLike)) else handle

    monkeypatch.setattr(os, "fdopen", fdopen)
    monkeypatch.setattr(builtins, "open", open_)
    return hit


def assert_one_file_failed(out: Path, hit: list[str]) -> None:
    assert hit, "the full-disk stand-in was never reached"
    names = sorted(p.name for p in out.iterdir())
    assert names == ["astronaut.png", "portrait-640.png"], names  # no .tmp, no victim


def test_matte_folder_on_a_full_disk_fails_that_file_only(photos: Path, tmp_path: Path, disk_full_for_victim: list[str],
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    code, err = run_main(["matte", photos, "-o", out, "--ref-size", "64"], capsys)
    assert code == 1, err
    errors = [line for line in err.splitlines() if "error" in line]
    assert len(errors) == 1 and VICTIM in errors[0] and "No space left on device" in errors[0], err
    assert_one_file_failed(out, disk_full_for_victim)


def test_ray_actor_on_a_full_disk_fails_that_file_only(photos: Path, tmp_path: Path,
                                                       disk_full_for_victim: list[str]) -> None:
    """The ``batch --ray`` actor, run in this process: a full disk is one error row, the other files are written."""
    pytest.importorskip("ray", reason="the ray extra is not installed")
    from greenless.distributed.ray_batch import JobSpec, MatteActor

    out = tmp_path / "out"
    out.mkdir()
    files = sorted(photos.iterdir())
    actor = MatteActor(JobSpec(output_uri=str(out), ref_size=64))
    rows = actor({"bytes": np.array([f.read_bytes() for f in files], dtype=object),
                  "path": np.array([str(f) for f in files], dtype=object)})
    errors = {Path(p).stem: e for p, e in zip(rows["path"], rows["error"])}
    assert "No space left on device" in errors.pop(VICTIM)
    assert set(errors.values()) == {""}
    assert_one_file_failed(out, disk_full_for_victim)
