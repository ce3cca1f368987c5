"""One way through: one model registry, one streaming call that video and webcam go through, one colour
rule, one background fit, outputs that honour the umask without changing it, and the official demo's
preprocessing for converted official checkpoints."""

from __future__ import annotations

import io
import itertools
import os
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from conftest import run_main
from greenless.errors import GreenlessError

FAST = ["--ref-size", "64"]


@pytest.fixture(scope="module")
def clip(data: Path) -> Path:
    return data / "videos" / "signing.mkv"


def _pngs(folder: Path) -> list[np.ndarray]:
    return [np.asarray(Image.open(p)) for p in sorted(folder.glob("*.png"))]


# --- the registry ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, channels, photo, stream, guide, temporal", [
    ("modnet", 4, 384, 288, "selfie", "ofd"),
])
def test_registry_answers_for_each_packaged_model(name: str, channels: int, photo: int, stream: int, guide: str,
                                                  temporal: str) -> None:
    """File, inputs, and each job's defaults, for every packaged model; Matter runs exactly what it says."""
    from greenless import Matter
    from greenless.registry import PACKAGED, packaged

    assert set(PACKAGED) == {"modnet", "modnet-paper"}
    model = packaged(name)
    assert model.path("onnx").is_file() and model.path("torch").suffix == ".safetensors"
    assert model.in_channels == channels
    photo_job, stream_job = model.defaults("photo"), model.defaults("stream")
    assert (photo_job.ref_size, stream_job.ref_size) == (photo, stream)
    assert photo_job.hint == stream_job.hint == ("guide" if guide == "selfie" else "none")
    assert photo_job.temporal == stream_job.temporal == temporal
    assert photo_job.preprocess == stream_job.preprocess == "greenless"
    still, live = Matter(model=name), Matter(model=name, stream=True)
    assert (still.ref_size, still.guide, still.preprocess) == (photo, guide, "greenless")
    assert (live.ref_size, live.guide) == (stream, guide)
    assert live.stream().label == "ofd" and live.stream(ofd=False).label == "none"
    # Without its guide the guided model falls back to feeding back its previous matte (OFD on top).
    if channels == 4:
        unguided = Matter(model=name, stream=True, guide="none")
        assert unguided.stream().label == "prev-alpha + ofd" and unguided.stream(ofd=False).label == "prev-alpha"


def test_a_set_that_ships_as_a_card_answers_and_says_how_to_rebuild_it(capsys: pytest.CaptureFixture[str],
                                                                       tmp_path: Path) -> None:
    """modnet-paper leaves the wheel (49 MB for MAD 0.113): its card still answers what it is and how each job
    would run it; asking for its weights is one line naming the command that rebuilds them."""
    from greenless import Matter
    from greenless.registry import packaged

    model = packaged("modnet-paper")
    assert not model.in_wheel and model.in_channels == 3
    assert (model.defaults("photo").ref_size, model.defaults("stream").hint) == (256, "none")
    if not (Path(__file__).resolve().parents[2] / "src" / "greenless" / "weights" / "modnet-paper.onnx").is_file():
        with pytest.raises(GreenlessError, match=r"modnet-paper is not in the package.*scripts/rebuild_weights.py modnet-paper"):
            Matter(model="modnet-paper")
        code, err = run_main(["matte", Path(__file__).resolve().parents[2] / "examples" / "astronaut.jpg", "-o",
                              tmp_path / "a.png", "--model", "modnet-paper"], capsys)
        assert code == 2 and err.count("\n") == 1 and "rebuild_weights.py modnet-paper" in err
        assert list(tmp_path.iterdir()) == []


def test_registry_refuses_unknown_names(capsys: pytest.CaptureFixture[str], clip: Path, tmp_path: Path) -> None:
    from greenless.registry import packaged

    with pytest.raises(GreenlessError, match="choose from modnet, modnet-paper"):
        packaged("modnet-large")
    code, err = run_main(["video", clip, "-o", tmp_path / "o.mp4", "--model", "nope"], capsys)
    assert code == 2 and err.count("\n") == 1 and "unknown model 'nope'" in err
    assert list(tmp_path.iterdir()) == []


# --- one streaming call -----------------------------------------------------------------------------------

@pytest.mark.parametrize("extra, label", [([], "ofd"), (["--guide", "none"], "prev-alpha + ofd")])
def test_video_alphas_are_the_streams(clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                      extra: list[str], label: str) -> None:
    """``greenless video --write alpha`` writes exactly the mattes ``Matter.stream()`` gives for the frames,
    for the guided default (guide every frame + OFD) and for feedback (previous matte + OFD)."""
    from greenless import Matter
    from greenless.media.video import open_video
    from greenless.pipeline.stream import apply_ofd

    out = tmp_path / "alpha"
    code, err = run_main(["video", clip, "-o", out, "--write", "alpha", "--max-frames", "6", "--batch", "2",
                          "-q", *FAST, *extra], capsys)
    assert code == 0, err
    assert f"temporal: {label})" in err
    written = _pngs(out)
    assert len(written) == 6

    matter = Matter(ref_size=64, stream=True, guide=extra[1] if extra else None)
    stream = matter.stream()
    assert stream.label == label
    with open_video(clip) as reader:
        frames = [f.image for f in itertools.islice(iter(reader), 6)]
    alphas = [a for a, _ in stream.run(frames, batch=2)]
    expected = [np.clip(a * 255.0 + 0.5, 0, 255).astype(np.uint8) for a in alphas]
    assert len(expected) == 6
    for got, want in zip(written, expected):
        np.testing.assert_array_equal(got, want)
    # OFD really ran: the mattes written are OFD of the stream's own mattes without it, and it changed pixels.
    raw = [a for a, _ in matter.stream(ofd=False).run(frames, batch=2)]
    assert sum(int((a != r).sum()) for a, r in zip(alphas, raw)) > 0
    for got, want in zip(alphas, apply_ofd(raw)):
        np.testing.assert_array_equal(got, want)


def test_webcam_frames_are_the_streams(clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``greenless webcam`` records exactly the composites of ``Matter.stream()``'s mattes (the same policy
    as video: the guide every frame, then OFD)."""
    from greenless import Matter
    from greenless.pipeline.video import Background, frame_render as render

    out = tmp_path / "cam"
    code, err = run_main(["webcam", "--source", clip, "--no-window", "-o", out, "--max-frames", "5",
                          "--background", "0,0,255", *FAST], capsys)
    assert code == 0, err
    written = _pngs(out)
    assert len(written) == 5

    capture = cv2.VideoCapture(str(clip))
    frames = []
    for _ in range(5):
        ok, bgr = capture.read()
        assert ok
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    capture.release()
    stream = Matter(ref_size=64, stream=True).stream()
    bg = Background("0,0,255", frames[0].shape[1], frames[0].shape[0])
    expected = [render("composite", f, a, bg) for a, f in stream.run(frames)]
    for got, want in zip(written, expected):
        np.testing.assert_array_equal(got, want)


def test_webcam_takes_the_same_temporal_choices_as_video(clip: Path, tmp_path: Path, unguided_weights: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    for command in (["webcam", "--source", clip, "--no-window", "-o", tmp_path / "w.mp4"],
                    ["video", clip, "-o", tmp_path / "v.mp4"]):
        code, err = run_main([*command, "--temporal", "prev-alpha", "--weights", unguided_weights, *FAST], capsys)
        assert code == 2 and err.count("\n") == 1 and "needs 4-channel" in err, err
        code, err = run_main([*command, "--temporal", "sometimes", *FAST], capsys)
        assert code == 2 and err.count("\n") == 1 and "unknown --temporal 'sometimes'" in err, err
    assert list(tmp_path.iterdir()) == []


def test_stream_batches_and_holds_one_frame_back(data: Path, unguided_weights: Path) -> None:
    """Batched pushes give the same mattes as one frame at a time; OFD holds the last frame until flush."""
    from greenless import Matter
    from greenless.media.video import open_video

    with open_video(data / "videos" / "signing.mkv") as reader:
        frames = [f.image for f in itertools.islice(iter(reader), 5)]
    matter = Matter(weights=unguided_weights, ref_size=64, stream=True)
    stream = matter.stream()
    assert stream.max_batch is None
    first = stream.push(frames[:1], ["a"])
    assert first == []  # held back by OFD
    rest = stream.push(frames[1:], list("bcde"))
    assert [item for _, item in rest] == list("abcd")
    assert [item for _, item in stream.flush()] == ["e"]
    one_by_one = [a for a, _ in matter.stream().run(frames, batch=1)]
    batched = [a for a, _ in matter.stream().run(frames, batch=5)]
    for a, b in zip(one_by_one, batched):
        np.testing.assert_allclose(a, b, atol=1e-5)
    with pytest.raises(GreenlessError, match="4-channel"):
        matter.stream("prev-alpha")


# --- one colour rule, one background fit ---------------------------------------------------------------

def test_out_of_range_colour_is_one_error_everywhere(data: Path, clip: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    import greenless
    from greenless.pipeline.video import Background
    from greenless.serve.app import ApiError, parse_options
    from greenless.serve.settings import ServeSettings

    photo = data / "photos" / "portrait-640.jpg"
    runs = [
        ["matte", photo, "--write", "composite", "--background", "300,0,0", "-o", tmp_path / "m.png"],
        ["video", clip, "-o", tmp_path / "v.mp4", "--background", "300,0,0", *FAST],
        ["webcam", "--source", clip, "--no-window", "-o", tmp_path / "w.mp4", "--background", "300,0,0", *FAST],
    ]
    for args in runs:
        code, err = run_main(args, capsys)
        assert code == 2 and err.count("\n") == 1 and "components must be 0-255" in err, (args, err)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(GreenlessError, match="components must be 0-255"):
        Background("300,0,0", 8, 6)
    with pytest.raises(GreenlessError, match="components must be 0-255"):
        greenless.composite(np.zeros((8, 8, 3), np.uint8), "300,0,0", alpha=np.ones((8, 8), np.float32))
    with pytest.raises(ApiError) as caught:
        parse_options({"background": "300,0,0"}, ServeSettings(), False)
    assert caught.value.status == 400 and "components must be 0-255" in caught.value.message
    # and in range, every entry point reads it the same
    assert tuple(Background("0,128,255", 2, 2).for_frame(np.zeros((2, 2, 3), np.uint8))[0, 0]) == (0, 128, 255)


def test_background_image_covers_the_frame_for_photo_video_and_webcam(tmp_path: Path) -> None:
    """A background image of another aspect ratio is scaled to cover and centre-cropped, never stretched,
    by photos (``composite``) and by video and webcam (``Background``) alike."""
    import greenless
    from greenless.pipeline.compose import cover_resize
    from greenless.pipeline.video import Background

    wide = np.zeros((50, 200, 3), np.uint8)  # 4:1: red | green | blue | white quarters
    for i, colour in enumerate([(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)]):
        wide[:, 50 * i:50 * (i + 1)] = colour
    path = tmp_path / "wide.png"
    Image.fromarray(wide).save(path)
    h, w = 60, 80
    covered = cover_resize(wide, h, w)
    # cover: the middle of the picture (green | blue), nothing of red or white, and no stretching
    assert tuple(covered[30, 5]) == (0, 255, 0) and tuple(covered[30, 75]) == (0, 0, 255)
    photo = greenless.composite(np.zeros((h, w, 3), np.uint8), str(path), alpha=np.zeros((h, w), np.float32))
    frame = Background(str(path), w, h).for_frame(np.zeros((h, w, 3), np.uint8))
    np.testing.assert_array_equal(photo, covered)
    np.testing.assert_array_equal(frame, covered)


# --- outputs honour the umask without changing it -----------------------------------------------------

def test_outputs_get_the_umask_mode_and_the_umask_is_never_set(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from greenless.media.files import current_umask, default_mode
    from greenless.media.images import save_image_atomic
    from greenless.media.video import open_writer

    old = os.umask(0o027)  # the test itself sets it once, before anything runs
    try:
        calls: list[int] = []
        real_umask = os.umask
        monkeypatch.setattr(os, "umask", lambda mask: calls.append(mask) or real_umask(mask))
        assert current_umask() == 0o027 and default_mode() == 0o640 and default_mode(True) == 0o750
        image = save_image_atomic(tmp_path / "a.png", np.zeros((4, 4, 3), np.uint8))
        writer = open_writer(tmp_path / "seq", 4, 4, 25)
        writer.write(np.zeros((4, 4, 3), np.uint8))
        writer.close()
        video = open_writer(tmp_path / "v.mp4", 16, 16, 25)
        video.write(np.zeros((16, 16, 3), np.uint8))
        video.close()
        assert calls == []  # nobody touched the process-wide umask
    finally:
        os.umask(old)
    assert image.stat().st_mode & 0o777 == 0o640
    assert (tmp_path / "seq").stat().st_mode & 0o777 == 0o750
    assert (tmp_path / "v.mp4").stat().st_mode & 0o777 == 0o640


# --- the official demo's preprocessing for converted official checkpoints ----------------------------

def _demo_matte(model: "torch.nn.Module", rgb: np.ndarray, ref_size: int) -> np.ndarray:  # noqa: F821
    """A straightforward re-implementation of MODNet's official image demo (demo/image_matting/colab/inference.py)."""
    import torch
    import torch.nn.functional as F

    im = torch.from_numpy(rgb).permute(2, 0, 1).float()[None] / 255.0
    im = (im - 0.5) / 0.5
    _, _, im_h, im_w = im.shape
    if max(im_h, im_w) < ref_size or min(im_h, im_w) > ref_size:
        if im_w >= im_h:
            im_rh, im_rw = ref_size, int(im_w / im_h * ref_size)
        else:
            im_rw, im_rh = ref_size, int(im_h / im_w * ref_size)
    else:
        im_rh, im_rw = im_h, im_w
    im_rw = im_rw - im_rw % 32
    im_rh = im_rh - im_rh % 32
    im = F.interpolate(im, size=(im_rh, im_rw), mode="area")
    with torch.inference_mode():
        matte = model(im)
    matte = F.interpolate(matte, size=(im_h, im_w), mode="area")
    return matte[0, 0].numpy()


def test_converted_official_checkpoint_runs_the_official_demo_preprocessing(tmp_path: Path, data: Path,
                                                                            unguided_weights: Path,
                                                                            capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("torch")
    from test_engines import _official_checkpoint

    from greenless import Matter
    from greenless.media.images import load_rgb
    from greenless.model.checkpoint import load_weights
    from greenless.pipeline.preprocess import demo_inference_size, inference_size
    from greenless.registry import packaged

    tsv = data / "modnet_official_state_dict.tsv"
    ckpt = tmp_path / "modnet_photographic_portrait_matting.ckpt"
    _official_checkpoint(tsv, ckpt)
    converted = tmp_path / "official.safetensors"
    code, err = run_main(["convert", ckpt, "-o", converted], capsys)
    assert code == 0, err
    model, card = load_weights(converted)
    assert card["preprocess"] == "modnet-demo"

    ref = 128
    photo = load_rgb(data / "photos" / "portrait-640.jpg")
    for path in (converted, ckpt):  # the converted file, and the checkpoint read directly
        matter = Matter(path, engine="torch", device="cpu", ref_size=ref)
        assert matter.preprocess == "modnet-demo" and matter.guide == "none"
        checked = 0
        for h, w in [(100, 150), (150, 101), (300, 210), (110, 181), (90, 200)]:
            assert inference_size(h, w, ref) != demo_inference_size(h, w, ref)  # sizes where the rules differ
            rgb = cv2.resize(photo, (w, h), interpolation=cv2.INTER_AREA)
            want = _demo_matte(model, rgb, ref)
            got = matter.matte(rgb)
            assert got.shape == (h, w)
            np.testing.assert_allclose(got, np.clip(want, 0, 1), atol=2e-5)
            checked += 1
        assert checked == 5
    # greenless's own weights keep greenless's rule (the default path's numbers do not move)
    assert packaged("modnet").defaults("photo").preprocess == "greenless"
    assert Matter(weights=unguided_weights).preprocess == "greenless"


# --- one copy of each shared rule: file suffixes, PNG encoding --------------------------------------------

def test_one_suffix_list_and_one_png_encoder(tmp_path: Path) -> None:
    """Every reader of still images knows the same suffixes, and every PNG writer (photos, PNG sequences, the
    server, Ray batch, evaluation) writes the same bytes for the same picture."""
    from greenless import export_check
    from greenless.distributed import ray_batch
    from greenless.evaluate import dataset, runner
    from greenless.media import images, video
    from greenless.media.video import open_writer
    from greenless.serve import app

    assert video.IMAGE_EXTENSIONS is images.IMAGE_SUFFIXES
    assert dataset.IMAGE_EXTS is ray_batch.IMAGE_SUFFIXES is export_check.IMAGE_SUFFIXES is images.IMAGE_SUFFIXES
    assert export_check.VIDEO_SUFFIXES is video.VIDEO_EXTENSIONS

    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
    rgba = np.dstack([rgb, rng.integers(0, 256, (12, 16), dtype=np.uint8)])
    grey = rgb[:, :, 0].copy()
    for picture in (rgb, rgba, grey):
        want = images.encode_png(picture)
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(want))), picture)
        assert images.encode_image(picture, "PNG") == want
    assert app.encode_png is ray_batch.encode_png is images.encode_png  # the one encoder, not copies
    assert not hasattr(runner, "encode_png") and not hasattr(runner, "write_png_atomic")
    src = Path(images.__file__).parents[1]
    defining = sorted(str(p.relative_to(src)) for p in src.rglob("*.py")
                      if re.search(r"def (encode_png|write_bytes_atomic|save_image_atomic|write_png_atomic|save_png_atomic)\b",
                                   p.read_text(encoding="utf-8")))
    assert defining == ["media/images.py"], defining  # one PNG encoder and one atomic writer in src
    writer = open_writer(tmp_path / "seq", 16, 12, 25, alpha=True)
    writer.write(rgba)
    writer.close()
    assert (tmp_path / "seq" / "000000.png").read_bytes() == images.encode_png(rgba)
