"""``greenless matte DIR --watch``: a real subprocess mattes photos dropped into a folder as they arrive, skips
its own results and other files, redoes a changed photo, and stops on SIGTERM with one summary line."""

from __future__ import annotations

import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import FIXTURES, REPO
from greenless.media.watch import FolderWatch

PORTRAITS = FIXTURES / "data" / "portraits" / "image"


def test_a_file_is_handed_out_once_it_stops_changing(tmp_path: Path) -> None:
    """Polls, not time: a file is ready at the poll after the one that first saw its size; growing makes it wait
    again; once handed out it comes back only when it changes; hidden files, other suffixes and skips stay out."""
    watch = FolderWatch(tmp_path, (".jpg", ".png"), skip=lambda p: p.name == "mine.png")
    photo = tmp_path / "a.jpg"
    photo.write_bytes(b"half")
    (tmp_path / ".a.jpg.part").write_bytes(b"x")
    (tmp_path / "notes.txt").write_bytes(b"x")
    (tmp_path / "mine.png").write_bytes(b"x")
    (tmp_path / "empty.jpg").write_bytes(b"")
    assert watch.poll() == []  # first sighting
    with photo.open("ab") as f:
        f.write(b" and the rest")  # still being copied
    assert watch.poll() == []
    assert watch.poll() == [photo]  # unchanged for one poll: complete
    assert watch.poll() == []  # handed out once
    os.utime(photo, ns=(time.time_ns(), time.time_ns() + 5_000_000_000))  # changed (touched)
    assert watch.poll() == []
    assert watch.poll() == [photo]


class _Lines:
    """A subprocess's stderr lines, read in a thread so the test can wait for one without blocking."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, args=(proc,), daemon=True).start()

    def _read(self, proc: subprocess.Popen) -> None:
        for raw in proc.stderr:
            self.lines.put(raw.decode(errors="replace").rstrip("\n"))

    def wait_for(self, text: str, seconds: float = 120) -> str:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                break
            self.seen.append(line)
            if text in line:
                return line
        raise AssertionError(f"no line with {text!r} within {seconds:.0f} s; stderr so far: {self.seen}")


def test_watch_mattes_photos_as_they_arrive_and_stops_on_sigterm(tmp_path: Path) -> None:
    first, second = sorted(PORTRAITS.glob("*.jpg"))[:2]
    folder, out = tmp_path / "inbox", tmp_path / "out"
    folder.mkdir()
    shutil.copy(first, folder / "before.jpg")  # there before the watch starts: matted too
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"), OMP_NUM_THREADS="2")
    proc = subprocess.Popen([sys.executable, "-m", "greenless", "matte", str(folder), "--watch", "-o", str(out),
                             "--write", "alpha", "--ref-size", "64"], stderr=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL, env=env)
    lines = _Lines(proc)
    try:
        assert "watching" in lines.wait_for("watching")
        lines.wait_for(f"wrote {out / 'before.png'}")
        # dropped in as a slow copy does: a hidden part file renamed into place, plus a file that is no photo
        part = folder / ".arrived.jpg.part"
        shutil.copy(second, part)
        part.rename(folder / "arrived.jpg")
        (folder / "notes.txt").write_text("not a photo\n")
        lines.wait_for(f"wrote {out / 'arrived.png'}")
        arrived = np.asarray(Image.open(out / "arrived.png"))
        assert arrived.ndim == 2 and arrived.shape == Image.open(second).size[::-1]
        # a broken photo is one error line and the watch goes on
        (folder / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
        lines.wait_for("greenless: error:")
        # a changed photo is matted again
        before = (out / "before.png").stat().st_mtime_ns
        shutil.copy(second, folder / "before.jpg")
        lines.wait_for(f"wrote {out / 'before.png'}")
        assert (out / "before.png").stat().st_mtime_ns > before
        proc.send_signal(signal.SIGTERM)
        summary = lines.wait_for("stopped watching")
        assert proc.wait(timeout=60) == 1  # one photo failed
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert summary == f"stopped watching {folder} (SIGTERM): wrote 3 file(s) to {out}, 1 failed"
    assert sorted(p.name for p in out.iterdir()) == ["arrived.png", "before.png"]  # no part files left, nothing else


def test_watch_refuses_what_it_cannot_watch(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from conftest import run_main

    photo = tmp_path / "p.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(photo)
    for args, words in [(["matte", photo, "--watch"], "one folder"),
                        (["matte", tmp_path, "--watch", "-o", "-"], "stdout"),
                        (["matte", tmp_path, "--watch", "-o", tmp_path / "x.png"], "must be a folder"),
                        (["matte", tmp_path, "--watch", "-o", tmp_path], "another folder")]:
        code, err = run_main(args, capsys)
        assert code == 2 and err.count("\n") == 1 and words in err, (args, err)
