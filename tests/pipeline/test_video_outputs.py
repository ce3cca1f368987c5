"""``greenless video`` with several outputs: one pass (each frame decoded and matted once) writes the composite,
the matte, the foreground and the cut-out, each what its own single-output run writes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import run_main
from greenless.media.video import VideoReader

FAST = ["--ref-size", "64", "--quiet", "--max-frames", "6"]


@pytest.fixture()
def clip(data: Path) -> Path:
    return data / "videos" / "signing.mkv"


def _frames(path: Path) -> list[np.ndarray]:
    if path.is_dir():
        return [np.asarray(Image.open(p)) for p in sorted(path.glob("*.png"))]
    with VideoReader(path) as reader:
        return [f.image for f in reader]


def test_one_pass_writes_every_output(clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from greenless.pipeline import stream as stream_module

    pushed: list[int] = []
    push = stream_module.MatteStream.push

    def counting_push(self, images, *args, **kwargs):  # every frame the network sees
        pushed.append(len(images))
        return push(self, images, *args, **kwargs)

    monkeypatch.setattr(stream_module.MatteStream, "push", counting_push)
    comp, alpha, fg, rgba = tmp_path / "comp.mp4", tmp_path / "alpha", tmp_path / "fg.mkv", tmp_path / "rgba.mov"
    code, err = run_main(["video", clip, "-o", comp, "--alpha-out", alpha, "--fg-out", fg, "--rgba-out", rgba,
                          "-b", "#3060ff", *FAST], capsys)
    assert code == 0, err
    assert sum(pushed) == 6, "each frame is matted once, not once per output"
    assert f"wrote {comp}, {alpha}, {fg}, {rgba} (6 frames" in err
    assert [len(_frames(p)) for p in (comp, alpha, fg, rgba)] == [6, 6, 6, 6]
    with VideoReader(rgba) as reader:
        assert reader.stream.codec_context.pix_fmt.startswith("yuva")  # the cut-out keeps its transparency
    assert _frames(alpha)[0].ndim == 2  # PNG frames of the matte: grey

    # the matte of the one pass is the matte a run writing only the matte gives
    pushed.clear()
    single = tmp_path / "alpha-only"
    code, err = run_main(["video", clip, "-o", single, "--write", "alpha", *FAST], capsys)
    assert code == 0, err
    for a, b in zip(_frames(alpha), _frames(single), strict=True):
        assert np.array_equal(a, b)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alpha", "alpha-only", "comp.mp4", "fg.mkv", "rgba.mov"]


def test_only_extra_outputs_need_no_o(clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run_main(["video", clip, "--alpha-out", tmp_path / "a.mp4", *FAST], capsys)
    assert code == 0, err
    assert len(_frames(tmp_path / "a.mp4")) == 6 and sorted(p.name for p in tmp_path.iterdir()) == ["a.mp4"]


@pytest.mark.parametrize("extra, words", [
    ([], "nothing to write"),
    (["-o", "{tmp}/x.mp4", "--alpha-out", "{tmp}/x.mp4"], "give each its own path"),
    (["-o", "{tmp}/x.mp4", "--rgba-out", "{tmp}/cut.mp4"], "cannot hold transparency"),
    (["-o", "{tmp}/x.mp4", "--fg-out", "{clip}"], "overwrite the input"),
])
def test_bad_outputs_are_one_line_before_any_work(clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                  extra: list[str], words: str) -> None:
    args = [a.format(tmp=tmp_path, clip=clip) for a in extra]
    code, err = run_main(["video", clip, *args, *FAST], capsys)
    assert code == 2 and err.count("\n") == 1 and words in err, err
    assert list(tmp_path.iterdir()) == []
