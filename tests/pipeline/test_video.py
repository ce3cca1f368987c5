"""greenless video: real decode/encode with PyAV on a real clip (a fixture); counts, timing, audio, alpha codecs, bad input."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from conftest import run_main

from greenless.errors import GreenlessError
from greenless.media.video import VideoReader, open_video
from greenless.pipeline.video import Background

FAST = ["--ref-size", "64", "--quiet"]


run_cli = run_main


def decode(path: Path, rgba: bool = False) -> list[av.VideoFrame]:
    with av.open(str(path)) as container:
        return list(container.decode(video=0))


def leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if ".part" in p.name or p.name.startswith(".")]


def make_clip_with_audio(path: Path, audio_codec: str, frames: int = 12, fps: int = 15, rate: int = 48000) -> None:
    """A tiny video (moving grey ramp + a figure) with a 440 Hz mono sine track."""
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = 96, 64, "yuv420p"
        audio = container.add_stream(audio_codec, rate=rate)
        audio.layout = "mono"
        per_frame = rate // fps
        fmt = audio.codec_context.format.name
        for i in range(frames):
            image = np.full((64, 96, 3), 40 + 8 * i, np.uint8)
            image[16:60, 36:60] = (200, 150, 120)
            vf = av.VideoFrame.from_ndarray(image, format="rgb24")
            vf.pts = i
            for packet in video.encode(vf):
                container.mux(packet)
            t = np.arange(i * per_frame, (i + 1) * per_frame) / rate
            wave = 0.3 * np.sin(2 * np.pi * 440 * t)
            data = (wave * 32767).astype(np.int16)[None] if fmt.startswith("s16") else wave.astype(np.float32)[None]
            af = av.AudioFrame.from_ndarray(data, format=fmt, layout="mono")
            af.sample_rate, af.pts = rate, i * per_frame
            for packet in audio.encode(af):
                container.mux(packet)
        for stream in (video, audio):
            for packet in stream.encode():
                container.mux(packet)


@pytest.fixture(scope="module")
def clip(data: Path) -> Path:
    """30 frames of a person signing, 320x240 at 30 fps, H.264 in Matroska, no audio (a fixture cut from an ASL clip)."""
    return data / "videos" / "signing.mkv"


def test_reader_properties_of_a_real_clip(clip: Path) -> None:
    with VideoReader(clip) as reader:
        assert (reader.width, reader.height) == (320, 240)
        assert reader.fps == 30
        assert not reader.frame_count_exact and abs(reader.frame_count - 30) <= 2  # Matroska stores no count
        assert reader.audio_streams == []
        frames = list(reader)
    assert len(frames) == 30
    assert frames[0].image.shape == (240, 320, 3) and frames[0].image.dtype == np.uint8
    times = [f.time for f in frames]
    assert all(b > a for a, b in zip(times, times[1:]))


def test_rotation_metadata_is_applied(tmp_path: Path) -> None:
    path = tmp_path / "rot.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 32, "yuv444p"
        stream.set_display_rotation(90)  # counter-clockwise, as phones tag portrait clips
        image = np.zeros((32, 64, 3), np.uint8)
        image[:8, :8] = 255  # white marker top-left of the stored frame
        for i in range(3):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    with VideoReader(path) as reader:
        assert reader.rotation == 90 and (reader.width, reader.height) == (32, 64)
        upright = next(iter(reader)).image
    assert upright.shape == (64, 32, 3)
    assert upright[-4, 4].mean() > 200 and upright[4, 4].mean() < 50  # top-left turned to bottom-left


def test_composite_mp4_keeps_frame_count_fps_and_timestamps(clip: Path, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "signing.mp4"
    code, err = run_cli(["video", clip, "-o", out, "--background", "#3060ff", *FAST], capsys)
    assert code == 0, err
    with VideoReader(clip) as src:
        src_times = [f.time for f in src]
    frames = decode(out)
    assert len(frames) == len(src_times) == 30
    np.testing.assert_allclose([f.time for f in frames], src_times, atol=2e-3)
    with VideoReader(out) as result:
        assert abs(float(result.fps) - 30.0) < 0.3
        assert result.frame_count_exact and result.frame_count == 30
        assert abs(result.duration - 30 / 30) < 0.05
        assert result.stream.codec_context.name == "h264"
        assert result.stream.codec_context.pix_fmt == "yuv420p"
    assert leftovers(tmp_path) == []


def test_audio_is_copied_unchanged(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "talk.mp4"
    make_clip_with_audio(src, "aac")
    out = tmp_path / "out.mp4"
    code, err = run_cli(["video", src, "-o", out, "--write", "foreground", *FAST], capsys)
    assert code == 0, err
    with av.open(str(src)) as a, av.open(str(out)) as b:
        assert len(b.streams.audio) == 1 and b.streams.audio[0].codec_context.name == "aac"
        src_packets = [bytes(p) for p in a.demux(a.streams.audio[0]) if p.size]
        out_packets = [bytes(p) for p in b.demux(b.streams.audio[0]) if p.size]
    assert src_packets == out_packets  # remuxed, not re-encoded
    assert len(decode(out)) == 12
    with VideoReader(out) as result:
        assert abs(float(result.fps) - 15.0) < 0.1


def test_audio_that_does_not_fit_webm_is_transcoded_with_a_note(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "pcm.mov"
    make_clip_with_audio(src, "pcm_s16le")
    out = tmp_path / "out.webm"
    code, err = run_cli(["video", src, "-o", out, *FAST], capsys)
    assert code == 0, err
    assert "transcoded to opus" in err
    with av.open(str(out)) as container:
        assert container.streams.audio[0].codec_context.name == "opus"
        samples = sum(f.samples for f in container.decode(audio=0))
    assert abs(samples - 12 * 48000 // 15) < 1000
    assert len(decode(out)) == 12


@pytest.mark.parametrize("suffix,codec", [(".mov", "prores"), (".webm", "vp9")])
def test_transparent_video_reads_back_with_alpha(clip: Path, tmp_path: Path, suffix: str, codec: str,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / f"cut{suffix}"
    code, err = run_cli(["video", clip, "-o", out, "--write", "rgba", "--max-frames", "6", *FAST], capsys)
    assert code == 0, err
    with VideoReader(out, rgba=True) as reader:
        assert reader.stream.codec_context.name == codec
        frames = list(reader)
    assert len(frames) == 6
    alpha = frames[0].image[:, :, 3]
    assert frames[0].image.shape == (240, 320, 4) and alpha.std() > 1.0  # a real, varying alpha channel


def test_png_sequence_outputs(clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from PIL import Image

    rgba, alpha = tmp_path / "rgba", tmp_path / "alpha"
    assert run_cli(["video", clip, "-o", rgba, "--write", "rgba", "--max-frames", "4", *FAST], capsys)[0] == 0
    assert run_cli(["video", clip, "-o", alpha, "--write", "alpha", "--max-frames", "3", *FAST], capsys)[0] == 0
    assert sorted(p.name for p in rgba.iterdir()) == [f"{i:06d}.png" for i in range(4)]
    assert sorted(p.name for p in alpha.iterdir()) == [f"{i:06d}.png" for i in range(3)]
    with Image.open(rgba / "000000.png") as im:
        assert im.mode == "RGBA" and im.size == (320, 240)
    with Image.open(alpha / "000002.png") as im:
        assert im.mode == "L"
    # the sequence is a valid input in turn, and rerunning replaces the folder
    with open_video(rgba, rgba=True) as reader:
        assert reader.frame_count == 4 and next(iter(reader)).image.shape == (240, 320, 4)
    assert run_cli(["video", rgba, "-o", rgba.with_name("again.mp4"), "--fps", "30", *FAST], capsys)[0] == 0
    assert run_cli(["video", clip, "-o", rgba, "--write", "rgba", "--max-frames", "2", *FAST], capsys)[0] == 0
    assert len(list(rgba.iterdir())) == 2 and leftovers(tmp_path) == []
    (rgba / "notes.txt").write_text("mine")  # a folder holding anything else is never replaced
    code, err = run_cli(["video", clip, "-o", rgba, "--write", "rgba", "--max-frames", "2", *FAST], capsys)
    assert code == 2 and "holds other files" in err and (rgba / "notes.txt").exists()


def test_backgrounds_colour_image_and_looping_video(tmp_path: Path) -> None:
    from PIL import Image

    assert (Background("red", 8, 6).for_frame(np.zeros((6, 8, 3), np.uint8))[0, 0] == (255, 0, 0)).all()
    assert (Background("10,20,30", 8, 6).for_frame(np.zeros((6, 8, 3), np.uint8))[5, 7] == (10, 20, 30)).all()
    Image.new("RGB", (40, 30), (0, 0, 255)).save(tmp_path / "bg.png")
    assert Background(str(tmp_path / "bg.png"), 8, 6).for_frame(np.zeros((6, 8, 3), np.uint8)).shape == (6, 8, 3)
    seq = tmp_path / "bgseq"
    seq.mkdir()
    for i, value in enumerate((10, 200)):
        Image.new("RGB", (16, 12), (value, value, value)).save(seq / f"{i}.png")
    bg = Background(str(seq), 8, 6)
    firsts = [int(bg.for_frame(np.zeros((6, 8, 3), np.uint8))[0, 0, 0]) for _ in range(5)]
    assert firsts == [10, 200, 10, 200, 10]  # loops
    with pytest.raises(GreenlessError):
        Background("not-a-colour-or-file", 8, 6)


def test_previous_alpha_is_fed_back_with_four_channel_weights(clip: Path, tmp_path: Path, unguided_weights: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("torch")
    from greenless import Matter
    from greenless.export import export_onnx
    from greenless.media.video import open_writer
    from greenless.model import build_model
    from greenless.pipeline.video import VideoPipeline

    weights = export_onnx(build_model({"encoder": "efficientnet-lite0", "in_channels": 4}), tmp_path / "prev.onnx")
    matter = Matter(weights, ref_size=64)
    assert matter.engine.in_channels == 4
    seen: list[object] = []
    original = matter.matte_batch

    def recording(images, prev_alphas=None):  # noqa: ANN001, ANN202
        seen.append(None if prev_alphas is None else prev_alphas[0])
        out = original(images, prev_alphas)
        seen.append(out[0])
        return out

    matter.matte_batch = recording  # type: ignore[method-assign]
    with open_video(clip) as reader:
        import itertools

        writer = open_writer(tmp_path / "p.mp4", reader.width, reader.height, reader.fps, time_base=reader.time_base)
        stats = VideoPipeline(matter, mode="alpha", temporal="prev-alpha", batch=4).run(
            itertools.islice(iter(reader), 4), writer)
        writer.close()
    assert stats.frames == 4 and len(seen) == 8
    assert seen[0] is None  # the first frame has no previous alpha
    for k in range(1, 4):
        assert seen[2 * k] is seen[2 * k - 1]  # frame k gets frame k-1's alpha
    code, err = run_cli(["video", clip, "-o", tmp_path / "cli.mp4", "--weights", weights,
                         "--max-frames", "3", *FAST], capsys)
    assert code == 0 and "temporal: prev-alpha" in err
    code, err = run_cli(["video", clip, "-o", tmp_path / "x.mp4", "--temporal", "prev-alpha",
                         "--weights", unguided_weights, *FAST], capsys)
    assert code == 2 and "4-channel" in err and err.count("\n") == 1
    # The packaged default is guided: video gives it the guide on every frame, with OFD (measured steadier
    # than feeding back its previous matte); --guide none brings the previous-alpha feedback back.
    code, err = run_cli(["video", clip, "-o", tmp_path / "packaged.mp4", "--max-frames", "3", *FAST], capsys)
    assert code == 0 and "temporal: ofd" in err
    code, err = run_cli(["video", clip, "-o", tmp_path / "unguided.mp4", "--max-frames", "3",
                         "--guide", "none", *FAST], capsys)
    assert code == 0 and "temporal: prev-alpha" in err


def bad(args: list[str], capsys: pytest.CaptureFixture[str], folder: Path, needle: str) -> None:
    code, err = run_cli(args, capsys)
    assert code != 0
    assert err.startswith("greenless: error:") and err.count("\n") == 1 and needle in err, err
    assert "Traceback" not in err
    assert [p.name for p in folder.iterdir() if p.name.startswith(("out", "."))] == []


def test_bad_inputs_give_one_line_and_no_output(data: Path, clip: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out.mp4"
    truncated = tmp_path / "cut.mp4"
    whole = (data / "videos" / "room.mp4").read_bytes()  # its index first: the frames' data is what is cut
    truncated.write_bytes(whole[: len(whole) // 2])
    bad(["video", truncated, "-o", out, *FAST], capsys, tmp_path, "truncated")
    garbage = tmp_path / "garbage.mkv"
    garbage.write_bytes(clip.read_bytes()[:1500])
    bad(["video", garbage, "-o", out, *FAST], capsys, tmp_path, "garbage.mkv")
    bad(["video", data / "videos" / "LICENSE.intel-sample-videos.CC-BY-4.0.txt", "-o", out, *FAST], capsys,
        tmp_path, "no video stream")
    sound = tmp_path / "sound.m4a"
    with av.open(str(sound), "w") as container:
        stream = container.add_stream("aac", rate=48000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 48000
        for packet in [*stream.encode(frame), *stream.encode()]:
            container.mux(packet)
    bad(["video", sound, "-o", out, *FAST], capsys, tmp_path, "no video stream")
    bad(["video", tmp_path / "missing.mp4", "-o", out, *FAST], capsys, tmp_path, "not found")
    bad(["video", clip, "-o", out, "--write", "rgba", *FAST], capsys, tmp_path, "cannot hold transparency")
    bad(["video", clip, "-o", tmp_path / "out.avi", *FAST], capsys, tmp_path, "cannot write .avi")
    bad(["video", clip, "-o", tmp_path / "nodir" / "out.mp4", *FAST], capsys, tmp_path, "does not exist")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if not os.access(locked, os.W_OK):  # root can write anywhere; the check then proves nothing
            bad(["video", clip, "-o", locked / "out.mp4", *FAST], capsys, locked, "not writable")
    finally:
        locked.chmod(0o700)
    bad(["video", clip, "-o", out, "--write", "matte", *FAST], capsys, tmp_path, "--write")


@pytest.mark.parametrize("option, value", [
    ("--max-frames", "-1"), ("--max-frames", "0"), ("--fps", "nan"), ("--fps", "inf"), ("--fps", "-inf"),
    ("--fps", "0"), ("--fps", "-25"), ("--fps", "1e-9"), ("--ofd-tol", "5"), ("--ofd-tol", "-0.1"),
    ("--ofd-tol", "nan"), ("--batch", "0"), ("--ref-size", "4096"), ("--ref-size", "100000"), ("--ref-size", "16"),
])
def test_bad_numbers_give_one_line_and_no_output(data: Path, clip: Path, tmp_path: Path, option: str,
                                                 value: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Out-of-range numbers, on a clip and on a folder of frames: one line naming the option, no partial
    output. ``--max-frames -1`` was a traceback that left a 0-byte .part file; ``--fps nan``/``inf`` were
    tracebacks; ``--ofd-tol 5`` was accepted silently; ``--ref-size 4096`` ran out of memory."""
    from PIL import Image

    frames = tmp_path / "frames"
    frames.mkdir()
    photo = Image.open(data / "photos" / "portrait-640.jpg").convert("RGB").resize((64, 48))
    for i in range(2):
        photo.save(frames / f"f{i}.png")
    for source in (clip, frames):  # the option comes last, so it wins over FAST's --ref-size 64
        bad(["video", source, "-o", tmp_path / "out.mp4", "--max-frames", "2", *FAST, option, value],
            capsys, tmp_path, option)


def test_output_that_is_an_input_is_refused(data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A hard link of the input, or the background video, as the output: one line, nothing written."""
    clip = tmp_path / "clip.mkv"
    clip.write_bytes((data / "videos" / "signing.mkv").read_bytes())
    same = tmp_path / "same.mkv"
    same.hardlink_to(clip)
    before = clip.read_bytes()
    bad(["video", clip, "-o", same, "--max-frames", "2", *FAST], capsys, tmp_path, "output would overwrite the input")
    backdrop = tmp_path / "backdrop.mp4"
    backdrop.write_bytes((data / "videos" / "room.mp4").read_bytes())
    bad(["video", clip, "-o", backdrop, "--background", backdrop, "--max-frames", "2", *FAST], capsys, tmp_path,
        "output would overwrite the background")
    assert clip.read_bytes() == before and backdrop.read_bytes() == (data / "videos" / "room.mp4").read_bytes()


@pytest.mark.needs_trained_weights
def test_person_is_matted_in_a_real_clip(clip: Path) -> None:
    from greenless import Matter

    with VideoReader(clip) as reader:
        frame = next(iter(reader)).image
    alpha = Matter().matte(frame)
    h, w = alpha.shape
    assert alpha[int(h * 0.75), w // 2] > 0.5  # the signer's torso
    assert alpha[5, 5] < 0.5 and alpha[5, w - 6] < 0.5


def test_fraction_fps_of_a_folder(tmp_path: Path) -> None:
    from PIL import Image

    for i in range(3):
        Image.new("RGB", (8, 6)).save(tmp_path / f"f{i}.png")
    with open_video(tmp_path, fps=29.97) as reader:
        assert reader.fps == Fraction(2997, 100) or abs(float(reader.fps) - 29.97) < 1e-3
