"""Reliability of the command line's edges: ``--version``, where ``matte FOLDER`` wrote, animated images, a
truncated video found before any frame is matted, and a TorchScript export fed back to ``--engine torch``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import run_greenless, run_main

FAST = ["--ref-size", "64"]


def lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.strip()]


def test_version_is_printed_and_exits_zero() -> None:
    from greenless import __version__

    result = run_greenless("--version", timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().strip() == f"greenless {__version__}"


def test_matte_of_a_folder_says_where_it_wrote(data: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "shoot"
    folder.mkdir()
    for src in sorted((data / "photos").glob("*.jpg"))[:2]:
        im = Image.open(src).convert("RGB")
        im.thumbnail((96, 96))
        im.save(folder / src.name)
    code, err = run_main(["matte", folder, *FAST], capsys)
    assert code == 0, err
    assert lines(err)[-1] == f"wrote 2 of 2 file(s) to {folder / 'greenless'}"
    assert len(list((folder / "greenless").glob("*.png"))) == 2


def test_an_animated_gif_is_refused_not_silently_its_first_frame(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    frames = [Image.new("RGB", (64, 48), (40 * i, 90, 160)) for i in range(4)]
    anim = tmp_path / "wave.gif"
    frames[0].save(anim, save_all=True, append_images=frames[1:], duration=80, loop=0)
    code, err = run_main(["matte", anim, *FAST], capsys)
    assert code == 2 and len(lines(err)) == 1, err
    assert "animated image (4 frames)" in err and "greenless video" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["wave.gif"]
    still = tmp_path / "still.gif"  # a one-frame GIF is a photo like any other
    frames[0].save(still)
    code, err = run_main(["matte", still, *FAST], capsys)
    assert code == 0 and (tmp_path / "still.png").is_file(), err


@pytest.mark.parametrize("name, keep", [("room.mp4", 0.5), ("signing.mkv", 0.5)])
def test_a_truncated_video_is_refused_before_any_frame_is_matted(data: Path, tmp_path: Path, name: str,
                                                                 keep: float, capsys: pytest.CaptureFixture[str],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A cut-off copy (the mp4's index, the mkv's header promise more) fails up front; the old output stays."""
    import greenless.matter

    raw = (data / "videos" / name).read_bytes()
    cut = tmp_path / f"cut{Path(name).suffix}"
    cut.write_bytes(raw[: int(len(raw) * keep)])
    out = tmp_path / "out.mp4"
    out.write_bytes(b"an earlier result")

    def no_matting(*args, **kwargs):
        raise AssertionError("the model was loaded for a truncated video")

    monkeypatch.setattr(greenless.matter, "Matter", no_matting)
    code, err = run_main(["video", cut, "-o", out, "--quiet", *FAST], capsys)
    assert code == 2 and len(lines(err)) == 1, err
    assert "truncated" in err and "nothing was matted" in err and cut.name in err
    assert out.read_bytes() == b"an earlier result"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([cut.name, "out.mp4"])


def test_a_torchscript_export_runs_with_the_torch_engine(repo_root: Path, data: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """The .pt ``greenless export --torchscript`` writes loads in ``--engine torch`` and gives the matte of the
    weights it came from; commands that need rebuildable weights say so in one line."""
    pytest.importorskip("torch")
    from greenless.export import export_torchscript
    from greenless.media.images import load_rgb
    from greenless.model.checkpoint import load_weights

    source = repo_root / "src" / "greenless" / "weights" / "modnet.safetensors"
    model, card = load_weights(source)
    scripted = export_torchscript(model, tmp_path / "model.pt", card)
    photo = tmp_path / "doctor.jpg"
    im = Image.open(data / "photos" / "portrait-640.jpg").convert("RGB")
    im.thumbnail((160, 160))
    im.save(photo)
    for weights, out in ((scripted, "ts.png"), (source, "eager.png")):
        code, err = run_main(["matte", photo, "--engine", "torch", "--weights", weights, "--write", "alpha",
                              "-o", tmp_path / out, *FAST], capsys)
        assert code == 0, err
    ts, eager = (np.asarray(Image.open(tmp_path / n), np.int16) for n in ("ts.png", "eager.png"))
    assert ts.shape == eager.shape and ts.std() > 5  # a real matte, not a blank
    assert np.abs(ts - eager).max() <= 1
    code, err = run_main(["export", "--weights", scripted, "-o", tmp_path / "again.onnx"], capsys)
    assert code == 2 and len(lines(err)) == 1 and "TorchScript" in err and "--engine torch" in err, err
