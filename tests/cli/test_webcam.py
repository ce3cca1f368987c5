"""greenless webcam without a camera: a real clip (a fixture) stands in, the result is recorded to a file."""

from __future__ import annotations

import sys
from pathlib import Path

import av
import pytest
from conftest import run_main



run_cli = run_main


@pytest.fixture(scope="module")
def clip(data: Path) -> Path:
    return data / "videos" / "signing.mkv"


@pytest.mark.parametrize("background", ["blur", "navy"])
def test_loop_records_max_frames_with_background(clip: Path, tmp_path: Path, background: str,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out.mp4"
    code, err = run_cli(["webcam", "--source", clip, "--no-window", "-o", out, "--max-frames", "20",
                         "--background", background, "--ref-size", "64"], capsys)
    assert code == 0, err
    assert "fps" in err  # the live frame rate is shown
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        frames = list(container.decode(stream))
        assert (stream.width, stream.height) == (320, 240) and abs(float(stream.average_rate) - 30) < 0.5
    assert len(frames) == 20
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"]


def test_window_without_gui_support_is_one_clear_line(clip: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from greenless.cli.webcam import gui_available

    code, err = run_cli(["webcam", "--source", clip, "--window", "--max-frames", "2"], capsys)
    if gui_available():
        pytest.fail("this test expects opencv-python-headless (no GUI)")
    assert code == 2 and err.count("\n") == 1 and "GUI support" in err


VIRTUAL = ["--no-window", "--virtual-camera", "--max-frames", "2", "--ref-size", "64"]


def test_virtual_camera_without_pyvirtualcam_is_one_line(clip: Path, capsys: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the webcam extra, --virtual-camera names the package and the extra to install."""
    monkeypatch.setitem(sys.modules, "pyvirtualcam", None)  # ``import pyvirtualcam`` now raises ImportError
    code, err = run_cli(["webcam", "--source", clip, *VIRTUAL], capsys)
    assert code == 2 and err.count("\n") == 1 and "needs pyvirtualcam" in err and "[webcam]" in err, err


def test_virtual_camera_missing_is_one_clear_line(clip: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """With pyvirtualcam but no virtual camera device (v4l2loopback, OBS), one line says how to get one."""
    pytest.importorskip("pyvirtualcam", reason="the virtual camera needs the webcam extra (pyvirtualcam)")
    code, err = run_cli(["webcam", "--source", clip, *VIRTUAL], capsys)
    assert code == 2 and err.count("\n") == 1 and "no virtual camera device" in err, err


def test_bad_sources(tmp_path: Path, clip: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run_cli(["webcam", "--camera", "57", "--no-window", "-o", tmp_path / "o.mp4"], capsys)
    assert code == 2 and "cannot open camera 57" in err and err.count("\n") == 1
    code, err = run_cli(["webcam", "--source", tmp_path / "none.mp4", "--no-window", "-o", tmp_path / "o.mp4"], capsys)
    assert code == 2 and "not found" in err
    code, err = run_cli(["webcam", "--source", clip, "--no-window"], capsys)
    assert code == 2 and "nothing to show" in err
    assert list(tmp_path.iterdir()) == []


def test_a_damaged_source_is_an_error_not_a_quiet_end(data: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """A file cut in half stood in for a camera used to end early with exit 0 and a short recording; it is read
    as `greenless video` reads it now: one line naming the damage, exit 2, no recording left."""
    whole = (data / "videos" / "room.mp4").read_bytes()  # its index first: the frames' data is what is cut
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole[: len(whole) // 2])
    code, err = run_cli(["webcam", "--source", cut, "--no-window", "-o", tmp_path / "o.mp4", "--ref-size", "64"],
                        capsys)
    assert code == 2 and err.count("\n") == 1 and "truncated" in err and "Traceback" not in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.mp4"]
