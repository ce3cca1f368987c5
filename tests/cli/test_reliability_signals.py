"""Reliability: ``greenless video`` stopped by SIGINT (Ctrl-C), SIGTERM (kill, timeout, docker stop) or SIGHUP.

Each test runs the real command in a subprocess on a real clip and sends the signal only once frames are
being written (the hidden ``.part`` file has grown past its header, or the ``.part`` folder holds PNGs),
then checks that the signal landed mid-run (the message counts frames, fewer than the clip has), that an
output that existed is byte-identical afterwards, that nothing ``.part`` is left, and that the exit code is
the shell's code for the signal with one line on stderr.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import pytest

REPO = Path(__file__).resolve().parents[2]
CLIP_FRAMES = 360  # the fixture clip's 36 real frames, ten times over: long enough for a signal to land mid-run


@pytest.fixture(scope="module")
def clip(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 360-frame H.264 mp4 (its index first, as web files have it) made of the fixture room clip's frames."""
    path = tmp_path_factory.mktemp("clip") / "room-long.mp4"
    with av.open(str(data / "videos" / "room.mp4")) as source:
        frames = [f.to_ndarray(format="rgb24") for f in source.decode(video=0)]
    with av.open(str(path), "w", options={"movflags": "+faststart"}) as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        stream.options = {"preset": "ultrafast"}
        for i in range(CLIP_FRAMES):
            for packet in stream.encode(av.VideoFrame.from_ndarray(frames[i % len(frames)], format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    with av.open(str(path)) as container:
        assert container.streams.video[0].frames == CLIP_FRAMES
    return path


def _default_signals() -> None:
    """In the child: the three signals at their defaults, even when pytest runs in the background or under
    nohup (which leave SIGINT or SIGHUP ignored, and greenless rightly keeps an ignored signal ignored)."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)


def start_video(clip: Path, out: Path, *extra: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"), OMP_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, "-m", "greenless", "video", str(clip), "-o", str(out),
                             "--ref-size", "64", "--batch", "1", "--quiet", *extra],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_default_signals)


def part_of(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if ".part" in p.name]


def wait_for_frames(proc: subprocess.Popen, folder: Path) -> None:
    """Block until the run has written frames: its ``.part`` file grew past the container header (the muxer
    flushed encoded packets), or its ``.part`` folder holds two PNGs. Fails if the run ends first."""
    header: dict[Path, int] = {}
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the run ended before frames were written: {proc.stderr.read()}"
        for part in part_of(folder):
            try:
                if part.is_dir():
                    if len(list(part.glob("*.png"))) >= 2:
                        return
                else:
                    size = part.stat().st_size
                    if size > header.setdefault(part, size):
                        return
            except FileNotFoundError:
                continue
        time.sleep(0.02)
    pytest.fail("no frames were written within 300 s")


def stop(proc: subprocess.Popen, sig: int) -> tuple[int, list[str]]:
    proc.send_signal(sig)
    err = proc.communicate(timeout=120)[1]
    return proc.returncode, [line for line in err.splitlines() if line.strip()]


def frames_in(message: str) -> int:
    found = re.search(r"(\d+)( of \d+)? frames", message)
    assert found, message
    return int(found.group(1))


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=lambda s: signal.Signals(s).name)
def test_an_interrupted_run_never_replaces_an_existing_video(clip: Path, tmp_path: Path, sig: int) -> None:
    out = tmp_path / "out.mp4"
    out.write_bytes(clip.read_bytes())  # a finished, playable output from an earlier run
    before = out.read_bytes()
    proc = start_video(clip, out)
    wait_for_frames(proc, tmp_path)
    code, lines = stop(proc, sig)
    name = signal.Signals(sig).name
    assert code == 128 + sig, lines
    assert len(lines) == 1 and f"interrupted ({name})" in lines[0] and "left unchanged" in lines[0], lines
    assert 0 < frames_in(lines[0]) < CLIP_FRAMES, lines  # the signal landed mid-run
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]


def test_ctrl_c_on_a_new_output_keeps_a_playable_video_and_says_it_is_partial(clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    proc = start_video(clip, out)
    wait_for_frames(proc, tmp_path)
    code, lines = stop(proc, signal.SIGINT)
    assert code == 130, lines
    assert len(lines) == 1 and "interrupted (SIGINT)" in lines[0] and "partial" in lines[0], lines
    written = frames_in(lines[0])
    assert 0 < written < CLIP_FRAMES and f"of {CLIP_FRAMES} frames" in lines[0], lines
    with av.open(str(out)) as container:  # raises on a corrupt or unfinished container
        assert len(list(container.decode(video=0))) == written
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]


def test_sigterm_and_sighup_clean_up_a_png_sequence(clip: Path, tmp_path: Path) -> None:
    """An existing PNG-sequence folder stays as it was; a new one is kept partial; no ``.part`` folder is left."""
    seq = tmp_path / "seq"
    seq.mkdir()
    (seq / "000000.png").write_bytes(b"an earlier sequence")
    proc = start_video(clip, seq, "--write", "alpha")
    wait_for_frames(proc, tmp_path)
    code, lines = stop(proc, signal.SIGHUP)
    assert code == 128 + signal.SIGHUP and len(lines) == 1 and "left unchanged" in lines[0], lines
    assert [p.name for p in seq.iterdir()] == ["000000.png"] and (seq / "000000.png").read_bytes() == b"an earlier sequence"
    assert part_of(tmp_path) == []

    fresh = tmp_path / "fresh"
    proc = start_video(clip, fresh, "--write", "alpha")
    wait_for_frames(proc, tmp_path)
    code, lines = stop(proc, signal.SIGTERM)
    assert code == 128 + signal.SIGTERM and len(lines) == 1 and "partial" in lines[0], lines
    written = frames_in(lines[0])
    assert 0 < written < CLIP_FRAMES and len(list(fresh.glob("*.png"))) == written
    assert part_of(tmp_path) == []
