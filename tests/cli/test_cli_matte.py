"""``greenless matte`` end to end in a subprocess: naming, output kinds and types, stdin/stdout, folders, bad input."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import REPO, run_greenless

FAST = ("--ref-size", "64")  # the network at 64 px keeps CPU runs quick; output size is still the photo's


@pytest.fixture()
def photos(tmp_path: Path, data: Path) -> Path:
    """A folder of three small real photos (JPEG) in a fresh temp dir: the two fixture photos and the example."""
    folder = tmp_path / "in"
    folder.mkdir()
    for src in [*sorted((data / "photos").glob("*.jpg")), REPO / "examples" / "astronaut.jpg"]:
        Image.open(src).convert("RGB").resize((120, 80)).save(folder / src.name, quality=90)
    return folder


def _files(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def _one_error_line(proc) -> str:
    err = proc.stderr.decode()
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("greenless: error: "), err
    return lines[0]


def test_example_photo(tmp_path: Path, repo_root: Path) -> None:
    """The bundled public-domain photo: ``greenless matte examples/astronaut.jpg`` writes examples/astronaut.png."""
    src = repo_root / "examples" / "astronaut.jpg"
    assert Image.open(src).size == (512, 512)
    assert "public domain" in (repo_root / "examples" / "README.md").read_text().lower()
    (tmp_path / "examples").mkdir()
    shutil.copy(src, tmp_path / "examples" / "astronaut.jpg")
    proc = run_greenless("matte", "examples/astronaut.jpg", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    out = Image.open(tmp_path / "examples" / "astronaut.png")
    assert out.format == "PNG" and out.mode == "RGBA" and out.size == (512, 512)


def test_default_names_never_overwrite_input(photos: Path) -> None:
    one = photos / "portrait-640.jpg"
    png = photos / "girl.png"
    Image.open(one).save(png)
    before = png.read_bytes()
    assert run_greenless("matte", str(png), *FAST).returncode == 0
    assert png.read_bytes() == before
    assert Image.open(photos / "girl.cutout.png").mode == "RGBA"
    proc = run_greenless("matte", str(one), "--write", "alpha", *FAST)
    assert proc.returncode == 0, proc.stderr.decode()
    assert Image.open(photos / "portrait-640.alpha.png").mode == "L"


@pytest.mark.parametrize("kind,name,fmt,mode", [
    ("rgba", "o.png", "PNG", "RGBA"),
    ("alpha", "o.png", "PNG", "L"),
    ("foreground", "o.png", "PNG", "RGB"),
    ("composite", "o.png", "PNG", "RGB"),
    ("composite", "o.jpg", "JPEG", "RGB"),
    ("rgba", "o.webp", "WEBP", "RGBA"),
])
def test_output_kinds(photos: Path, tmp_path: Path, kind: str, name: str, fmt: str, mode: str) -> None:
    src = photos / "portrait-1280.jpg"
    out = tmp_path / "res" / name
    bg = ["--background", "0,255,0"] if kind == "composite" else []
    proc = run_greenless("matte", str(src), "--write", kind, "-o", str(out), *bg, *FAST)
    assert proc.returncode == 0, proc.stderr.decode()
    img = Image.open(out)
    assert (img.format, img.mode, img.size) == (fmt, mode, (120, 80))
    assert _files(tmp_path / "res") == {name}


def test_composite_on_background_image_and_no_fg_estimate(photos: Path, tmp_path: Path, data: Path) -> None:
    src = photos / "portrait-1280.jpg"
    out = tmp_path / "c.png"
    bg = data / "backgrounds" / "beach.jpg"
    proc = run_greenless("matte", str(src), "--write", "composite", "--background", str(bg), "-o", str(out),
                         "--no-fg-estimate", *FAST)
    assert proc.returncode == 0, proc.stderr.decode()
    assert Image.open(out).size == (120, 80)


def test_stdin_to_stdout_and_to_file(photos: Path, tmp_path: Path) -> None:
    data = (photos / "portrait-640.jpg").read_bytes()
    proc = run_greenless("matte", "-", "--write", "alpha", *FAST, stdin=data)
    assert proc.returncode == 0, proc.stderr.decode()
    img = Image.open(io.BytesIO(proc.stdout))
    assert (img.format, img.mode, img.size) == ("PNG", "L", (120, 80))
    proc = run_greenless("matte", "-", "-o", str(tmp_path / "s.png"), *FAST, stdin=data)
    assert proc.returncode == 0 and proc.stdout == b""
    assert Image.open(tmp_path / "s.png").mode == "RGBA"
    proc = run_greenless("matte", str(photos / "portrait-640.jpg"), "-o", "-", "--write", "foreground", *FAST)
    assert proc.returncode == 0, proc.stderr.decode()
    assert Image.open(io.BytesIO(proc.stdout)).mode == "RGB"
    proc = run_greenless("matte", "-", *FAST, stdin=b"not an image")
    assert proc.returncode != 0 and proc.stdout == b""
    assert "<stdin>" in _one_error_line(proc)


def test_folder_with_a_bad_file(photos: Path, tmp_path: Path) -> None:
    (photos / "b_broken.jpg").write_text("not a jpeg")
    out = tmp_path / "out"
    proc = run_greenless("matte", str(photos), "-o", str(out), *FAST)
    assert proc.returncode == 1
    err = proc.stderr.decode()
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if "error" in line]
    assert len(errors) == 1 and "b_broken.jpg" in errors[0], err
    assert _files(out) == {"astronaut.png", "portrait-1280.png", "portrait-640.png"}


def test_folder_without_o_and_quoted_glob(photos: Path, tmp_path: Path) -> None:
    proc = run_greenless("matte", str(photos), *FAST)
    assert proc.returncode == 0, proc.stderr.decode()
    assert {n for n in _files(photos) if n.startswith("greenless/")} == {
        "greenless/astronaut.png", "greenless/portrait-1280.png", "greenless/portrait-640.png"}
    proc = run_greenless("matte", str(photos / "portrait-*.jpg"), "-o", str(tmp_path / "g"), "--write", "alpha", *FAST)
    assert proc.returncode == 0, proc.stderr.decode()
    assert _files(tmp_path / "g") == {"portrait-1280.png", "portrait-640.png"}
    assert all(Image.open(p).mode == "L" for p in (tmp_path / "g").iterdir())


def test_odd_sizes_keep_their_size(tmp_path: Path, data: Path) -> None:
    src = Image.open(data / "photos" / "portrait-1280.jpg").convert("RGB")
    for w, h in ((33, 47), (101, 517)):
        path = tmp_path / f"odd{w}x{h}.jpg"
        src.resize((w, h)).save(path)
    proc = run_greenless("matte", str(tmp_path / "odd*.jpg"), "-o", str(tmp_path / "out"), "--write", "alpha")
    assert proc.returncode == 0, proc.stderr.decode()
    assert Image.open(tmp_path / "out" / "odd33x47.png").size == (33, 47)
    assert Image.open(tmp_path / "out" / "odd101x517.png").size == (101, 517)


def test_thin_images_cost_what_a_photo_costs(tmp_path: Path, data: Path) -> None:
    """A 255x1 row and (at --ref-size 2048) a 1x2047 column of a real photo, matted within 3 GB of
    address space; a photo needs under 1.5 GB. Before the network input's long side was bounded the
    row needed over 8 GB and the column a traceback (OpenCV asked for 25.7 GB)."""
    photo = Image.open(data / "photos" / "portrait-1280.jpg").convert("RGB")
    photo.crop((0, 400, 255, 401)).save(tmp_path / "row.png")
    photo.crop((400, 0, 401, 1)).resize((1, 2047)).save(tmp_path / "column.png")
    for name, size, extra in (("row", (255, 1), ()), ("column", (1, 2047), ("--ref-size", "2048"))):
        proc = run_greenless("matte", f"{name}.png", "-o", f"{name}.out.png", *extra, cwd=tmp_path,
                             memory_limit=3 << 30)
        assert proc.returncode == 0, proc.stderr.decode()[-2000:]
        out = Image.open(tmp_path / f"{name}.out.png")
        assert (out.mode, out.size) == ("RGBA", size)


def _make_bad(kind: str, folder: Path, data: Path) -> tuple[list[str], str]:
    """(arguments, text the error line must contain) for one kind of bad input."""
    photo = data / "photos" / "portrait-640.jpg"
    if kind == "missing":
        return [str(folder / "missing.jpg")], "not found"
    if kind == "zero-byte":
        (folder / "zero.jpg").write_bytes(b"")
        return [str(folder / "zero.jpg")], "empty"
    if kind == "truncated":
        (folder / "cut.jpg").write_bytes(photo.read_bytes()[:15000])
        return [str(folder / "cut.jpg")], "truncated"
    if kind == "text-as-jpg":
        (folder / "notes.jpg").write_text("hello\n")
        return [str(folder / "notes.jpg")], "not an image"
    if kind == "bomb":
        shutil.copy(photo, folder / "big.jpg")
        return [str(folder / "big.jpg"), "--max-pixels", "1000"], "limit"
    shutil.copy(photo, folder / "ok.jpg")
    if kind == "bad-output":
        return [str(folder / "ok.jpg"), "--write", "bogus"], "--write"
    if kind == "bad-engine":
        return [str(folder / "ok.jpg"), "--engine", "bogus"], "--engine"
    if kind == "bad-background":
        return [str(folder / "ok.jpg"), "--write", "composite", "--background", "nocolour"], "nocolour"
    if kind == "background-not-composite":  # a background for a cut-out would be silently ignored
        return [str(folder / "ok.jpg"), "--background", "#00ff00"], "--write composite"
    if kind == "jpeg-cutout":
        return [str(folder / "ok.jpg"), "-o", str(folder / "cut.jpg")], "transparency"
    if kind in ("ref-size-4096", "ref-size-100000"):  # the server's bound (2048); these used to be tracebacks
        return [str(folder / "ok.jpg"), "-o", str(folder / "cut.png"), "--ref-size", kind.rsplit("-", 1)[1]], "--ref-size"
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["missing", "zero-byte", "truncated", "text-as-jpg", "bomb", "bad-output",
                                  "bad-engine", "bad-background", "background-not-composite", "jpeg-cutout", "ref-size-4096",
                                  "ref-size-100000"])
def test_bad_input_is_one_line(tmp_path: Path, data: Path, kind: str) -> None:
    folder = tmp_path / "w"
    folder.mkdir()
    args, words = _make_bad(kind, folder, data)
    before = _files(folder)
    proc = run_greenless("matte", *args)
    assert proc.returncode != 0
    assert words in _one_error_line(proc)
    assert _files(folder) == before  # no output, no temp file


@pytest.mark.needs_trained_weights
def test_portrait_cutout_quality(data: Path, tmp_path: Path) -> None:
    """With the shipped weights the CLI matte of a real portrait stays near its ground truth.

    The bound guards against regressions: the photo default (modnet, guided, 384) measures MAD 0.0134 here.
    """
    src = data / "portraits" / "image" / "p_09ba26b4.jpg"
    proc = run_greenless("matte", str(src), "--write", "alpha", "-o", str(tmp_path / "a.png"))
    assert proc.returncode == 0, proc.stderr.decode()
    alpha = np.asarray(Image.open(tmp_path / "a.png"), np.float32) / 255.0
    truth = np.asarray(Image.open(data / "portraits" / "alpha" / "p_09ba26b4.png").convert("L"), np.float32) / 255.0
    assert alpha.shape == truth.shape
    assert np.abs(alpha - truth).mean() < 0.017


def test_output_naming_rules(tmp_path: Path) -> None:
    """Names without running the model: lone inputs, folders, clashing stems, inputs never overwritten."""
    from greenless.cli.matte import OutputKind, batch_outputs, expand_inputs, single_output  # noqa: F401

    folder = tmp_path / "f"
    folder.mkdir()
    for name in ("b.jpg", "a.jpg", "a.png", "c.PNG", "notes.txt"):
        (folder / name).write_bytes(b"x")
    jpg, png = folder / "a.jpg", folder / "a.png"
    assert single_output(jpg, OutputKind.rgba, None) == folder / "a.png"
    assert single_output(png, OutputKind.rgba, None) == folder / "a.cutout.png"
    assert single_output(jpg, OutputKind.alpha, None) == folder / "a.alpha.png"
    assert single_output(jpg, OutputKind.rgba, "x.webp") == Path("x.webp")
    assert single_output(jpg, OutputKind.rgba, str(tmp_path / "new") + "/") == tmp_path / "new" / "a.png"
    assert single_output(png, OutputKind.rgba, str(folder)) == folder / "a.cutout.png"

    files, problems, many = expand_inputs([str(folder), str(jpg)])
    assert [f.name for f in files] == ["a.jpg", "a.png", "b.jpg", "c.PNG"] and not problems and many
    names = [p.relative_to(tmp_path).as_posix() for p in batch_outputs(files, [str(folder)], None, OutputKind.rgba)]
    assert names == ["f/greenless/a.jpg.png", "f/greenless/a.png.png", "f/greenless/b.png", "f/greenless/c.png"]
    names = [p.name for p in batch_outputs(files, [str(folder)], str(folder), OutputKind.alpha)]
    assert names == ["a.jpg.png", "a.png.png", "b.png", "c.cutout.png"]
    loose = batch_outputs([jpg, folder / "b.jpg"], [str(jpg), str(folder / "b.jpg")], None, OutputKind.alpha)
    assert [p.name for p in loose] == ["a.alpha.png", "b.alpha.png"]
    loose = batch_outputs([jpg, png], [str(jpg), str(png)], None, OutputKind.rgba)  # a.jpg's a.png is an input
    assert [p.name for p in loose] == ["a.cutout.png", "a.cutout-2.png"]
    other = tmp_path / "g"
    other.mkdir()
    (other / "b.jpg").write_bytes(b"x")
    twice = batch_outputs([folder / "b.jpg", other / "b.jpg"], [str(folder), str(other)], str(tmp_path / "o"),
                          OutputKind.rgba)
    assert [p.name for p in twice] == ["b.jpg.png", "b.jpg-2.png"]
    files, problems, many = expand_inputs([str(folder / "*.jpg"), str(tmp_path / "none*.jpg")])
    assert [f.name for f in files] == ["a.jpg", "b.jpg"] and many
    assert len(problems) == 1 and "no images match" in problems[0]


def test_output_that_is_the_input_is_refused(photos: Path, tmp_path: Path) -> None:
    """-o naming the input (itself, through ``..``, a symlink or a hard link) or the background image is one
    error line and a non-zero exit before any work; these used to overwrite the input and exit 0."""
    jpg = photos / "portrait-640.jpg"
    png = photos / "x.png"
    Image.open(jpg).save(png)
    (photos / "link.png").symlink_to(png.name)
    (photos / "hard.png").hardlink_to(png)
    before = {p.name: p.read_bytes() for p in photos.iterdir()}
    cases = [
        ([str(png), "-o", str(png)], str(png)),
        ([str(jpg), "-o", str(jpg), "--write", "composite"], str(jpg)),
        (["in/x.png", "-o", "in/../in/x.png"], "in/../in/x.png"),
        ([str(png), "-o", str(photos / "link.png")], "link.png"),
        ([str(png), "-o", str(photos / "hard.png")], "hard.png"),
        ([str(jpg), "--write", "composite", "--background", str(png), "-o", str(png)], "background image"),
    ]
    for args, words in cases:
        proc = run_greenless("matte", *args, *FAST, cwd=tmp_path)
        assert proc.returncode != 0, args
        line = _one_error_line(proc)
        assert "output would overwrite" in line and words in line, (args, line)
        assert {p.name: p.read_bytes() for p in photos.iterdir()} == before, args


def test_folder_runs_never_write_onto_an_input(photos: Path, tmp_path: Path) -> None:
    """Loose a.jpg and a.png: a.jpg's default name (a.png) is the other input, so it takes another name;
    an output folder holding a hard link of an input under a result's name refuses the run."""
    a_jpg = photos / "a.jpg"
    (photos / "portrait-640.jpg").rename(a_jpg)
    a_png = photos / "a.png"
    Image.open(photos / "portrait-1280.jpg").save(a_png)
    kept = a_png.read_bytes()
    proc = run_greenless("matte", str(a_jpg), str(a_png), *FAST)
    assert proc.returncode == 0, proc.stderr.decode()
    assert a_png.read_bytes() == kept
    assert {"a.cutout.png", "a.cutout-2.png"} <= _files(photos)
    out = tmp_path / "out"
    out.mkdir()
    (out / "portrait-1280.png").hardlink_to(photos / "portrait-1280.jpg")
    jpeg = (photos / "portrait-1280.jpg").read_bytes()
    proc = run_greenless("matte", str(photos), "-o", str(out), *FAST)
    assert proc.returncode != 0
    line = _one_error_line(proc)
    assert "output would overwrite the input" in line and "portrait-1280.jpg" in line
    assert _files(out) == {"portrait-1280.png"} and (photos / "portrait-1280.jpg").read_bytes() == jpeg


def test_unwritable_stdout_is_one_line(photos: Path) -> None:
    """``-o - > /dev/full``: one error line and a non-zero exit, not a traceback (and no second one at exit)."""
    with open("/dev/full", "wb") as full:
        proc = run_greenless("matte", str(photos / "portrait-640.jpg"), "-o", "-", *FAST, stdout=full)
    assert proc.returncode != 0
    assert "standard output" in _one_error_line(proc)


def test_packaged_models_by_name(photos: Path, tmp_path: Path) -> None:
    """--model picks a packaged weight set; a set that ships as a card only (modnet-paper), a wrong name, or
    --model with --weights is one error line and writes nothing."""
    src = sorted(photos.glob("*.jpg"))[0]
    outs = {}
    for name, how in (("modnet", ["--model", "modnet"]), ("default", [])):
        out = tmp_path / f"{name}.png"
        proc = run_greenless("matte", str(src), *how, "--write", "alpha", "-o", str(out), *FAST)
        assert proc.returncode == 0, proc.stderr.decode()
        outs[name] = np.asarray(Image.open(out), np.float32)
    assert outs["modnet"].shape == (80, 120) and np.array_equal(outs["modnet"], outs["default"])  # the default
    if not (REPO / "src" / "greenless" / "weights" / "modnet-paper.onnx").is_file():  # not rebuilt in this clone
        line = _one_error_line(run_greenless("matte", str(src), "--model", "modnet-paper", "-o", str(tmp_path / "x.png")))
        assert "modnet-paper is not in the package" in line and "scripts/rebuild_weights.py modnet-paper" in line
    line = _one_error_line(run_greenless("matte", str(src), "--model", "modnet-tiny", "-o", str(tmp_path / "x.png")))
    assert "modnet-tiny" in line and "modnet-paper" in line
    line = _one_error_line(run_greenless("matte", str(src), "--model", "modnet", "--weights", str(src),
                                         "-o", str(tmp_path / "x.png")))
    assert "not both" in line
    assert not (tmp_path / "x.png").exists()
