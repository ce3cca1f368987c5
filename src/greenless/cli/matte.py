"""``greenless matte``: photos, folders, globs or stdin in; cut-outs, mattes, foregrounds or composites out.

Output naming. One input without ``-o``: the rgba cut-out goes next to the photo as ``PHOTO.png``
(``PHOTO.cutout.png`` when the photo is itself a .png, so it is never overwritten); other kinds are
``PHOTO.alpha.png``, ``PHOTO.foreground.png``, ``PHOTO.composite.png``. With ``-o``: one input writes
that file (or into that folder if it exists, ends with ``/`` or has no suffix); several inputs or a
folder write ``OUT/STEM.png`` each (``STEM.EXT.png`` when two inputs share a stem, ``STEM.cutout.png``
when the name is an input's, ``-2`` etc. when even that clashes). A folder given without ``-o`` writes
into ``FOLDER/greenless/``; loose files without ``-o`` are named as a lone input's would be. No input is
ever overwritten by a default name, and an explicit output that is an input (the same path, a symlink
to it or a hard link of it), or the background image, is refused before any work.
"""

from __future__ import annotations

import glob
import os
import sys
from enum import Enum
from pathlib import Path

import typer

from greenless.cli import (EngineName, app, engine_option, guide_option, model_option, ref_size_option, refuse_overwrite,
                           threads_option)
from greenless.cli.flags import background_option, out_option, write_option
from greenless.pipeline.compose import OutputKind, parse_background


_GLOB_CHARS = set("*?[")
_OWN_SUFFIXES = {OutputKind.rgba: ".png", OutputKind.alpha: ".alpha.png",
                 OutputKind.foreground: ".foreground.png", OutputKind.composite: ".composite.png"}
_DEFAULT_FOLDER = "greenless"


def expand_inputs(inputs: list[str]) -> tuple[list[Path], list[str], bool]:
    """Files, folders (images inside, sorted, not recursive) and globs -> (files, problems, many).

    ``problems`` are one-line messages for inputs that named nothing; ``many`` is True when the run
    writes several results (several inputs, a folder or a glob), so ``-o`` is a folder.
    """
    from greenless.media.images import IMAGE_SUFFIXES

    files: list[Path] = []
    problems: list[str] = []
    many = len(inputs) > 1
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            many = True
            found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                problems.append(f"{item}: no images in this folder ({', '.join(IMAGE_SUFFIXES)})")
            files.extend(found)
        elif not path.exists() and _GLOB_CHARS & set(item):
            many = True
            found = sorted(Path(p) for p in glob.glob(item, recursive=True)
                           if Path(p).is_file() and Path(p).suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                problems.append(f"{item}: no images match this pattern")
            files.extend(found)
        else:
            files.append(path)  # missing files are reported when they are read, one line each
    unique: list[Path] = []
    seen: set[Path] = set()
    for f in files:
        key = f.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(f)
    return unique, problems, many


def _is_folder_target(out: str) -> bool:
    return out.endswith(("/", os.sep)) or Path(out).is_dir() or not Path(out).suffix


def _key(path: Path) -> str:
    """Identity of a path for clash checks; case-folded so case-insensitive file systems are safe too."""
    return str(path.resolve()).casefold()


def single_output(src: Path, kind: OutputKind, out: str | None) -> Path:
    """Where the result for a lone input goes (see module docstring); an input is never its own output."""
    if out is not None and not _is_folder_target(out):
        return Path(out)  # an explicit file name is the user's choice
    folder = Path(out) if out is not None else src.parent
    target = folder / (f"{src.stem}.png" if out is not None else src.stem + _OWN_SUFFIXES[kind])
    if _key(target) == _key(src):
        target = folder / f"{src.stem}.cutout.png"
    return target


def batch_outputs(files: list[Path], inputs: list[str], out: str | None, kind: OutputKind) -> list[Path]:
    """Where each result of a multi-photo run goes (see module docstring).

    ``OUT/STEM.png`` (or ``FOLDER/greenless/STEM.png`` for a folder given without ``-o``); stems that
    clash keep their extension (``a.jpg.png``); an input is never overwritten. Loose files without
    ``-o`` are named as a lone input would be. The first rule is ``greenless.media.naming``'s (batch --ray
    uses it too); inputs from several folders that still meet on one name are numbered (``a-2.png``).
    """
    from greenless.media.naming import clashing_stems, result_name

    folders = [Path(i).resolve() for i in inputs if Path(i).is_dir()]
    folder_for: dict[Path, Path | None] = {}
    for f in files:
        if out is not None:
            folder_for[f] = Path(out)
        elif f.parent.resolve() in folders:
            folder_for[f] = f.parent / _DEFAULT_FOLDER
        else:
            folder_for[f] = None  # next to the photo, named like a lone input's result
    going_to: dict[str, list[Path]] = {}  # inputs by the folder their result goes to
    for f in files:
        if folder_for[f] is not None:
            going_to.setdefault(_key(folder_for[f]), []).append(f)
    clashing = {key: clashing_stems(f.name for f in group) for key, group in going_to.items()}
    names_in: dict[str, set[str]] = {}  # input names by the folder they are in
    for f in files:
        names_in.setdefault(_key(f.parent), set()).add(f.name.casefold())
    inputs_resolved = {_key(f) for f in files}
    result = []
    for f in files:
        folder = folder_for[f]
        if folder is None:
            result.append(single_output(f, kind, None))
            continue
        here = frozenset(names_in.get(_key(folder), ()))
        result.append(folder / result_name(f.name, clashing[_key(folder)], here))
    taken: set[str] = set()
    for i, target in enumerate(result):
        if _key(target) in inputs_resolved:  # e.g. loose a.jpg and a.png: a.jpg's a.png is an input
            target = result[i] = target.with_name(f"{target.name[:-4]}.cutout.png")
        n = 1  # the same name from different folders, or an input's name: number the later ones
        while _key(result[i]) in taken or _key(result[i]) in inputs_resolved:
            n += 1
            result[i] = target.with_name(f"{target.name[:-4]}-{n}.png")
        taken.add(_key(result[i]))
    return result


def refuse_batch_overwrites(targets: list[Path], files: list[Path], background_file: Path | None) -> None:
    """One ``GreenlessError`` when an existing target is the same file on disk as an input or the
    background image (a hard link, or a symlink the names do not show), before anything is matted.

    ``batch_outputs`` already never picks an input's path; this catches what paths cannot tell.
    """
    from greenless.errors import GreenlessError

    on_disk: dict[tuple[int, int], str] = {}
    sources: list[tuple[Path, str]] = [(f, "the input") for f in files]
    if background_file is not None:
        sources.append((background_file, "the background image"))
    for path, what in sources:
        try:
            st = os.stat(path)
        except OSError:
            continue  # a missing input is reported when it is read
        on_disk[(st.st_dev, st.st_ino)] = f"{what} {path}"
    for target in targets:
        try:
            st = os.stat(target)
        except OSError:
            continue
        if (st.st_dev, st.st_ino) in on_disk:
            raise GreenlessError(f"{target}: output would overwrite {on_disk[(st.st_dev, st.st_ino)]}")


def _output_format(target: Path | None, kind: OutputKind) -> str:
    """PNG unless the target names .jpg/.jpeg/.webp, which is honoured when it can hold the result."""
    from greenless.errors import GreenlessError
    from greenless.media.images import format_for

    if target is None:
        return "PNG"
    fmt = format_for(target)
    if fmt == "JPEG" and kind is OutputKind.rgba:
        raise GreenlessError(f"{target}: JPEG cannot store transparency; use .png or .webp for a cut-out")
    return fmt


@app.command()
def matte(
    inputs: list[str] = typer.Argument(..., metavar="INPUT",
                                       help="Photos, folders (their images, sorted), globs, or - for stdin."),
    output: str | None = out_option("Output file (one input; - for stdout) or folder (several inputs, a folder, "
                                    "or ending in /)."),
    kind: OutputKind = write_option(OutputKind.rgba),
    background: str | None = background_option(None, "For --write composite: colour (white, #00ff00, 0,255,0) or "
                                                "an image file (default white)."),
    ref_size: int | None = ref_size_option(),
    engine: EngineName = engine_option(),
    weights: Path | None = typer.Option(None, "-w", "--weights", help="Weights file (.onnx, .safetensors or official .ckpt)."),
    model: str | None = model_option(),
    guide: str | None = guide_option(),
    threads: int | None = threads_option(),
    no_fg_estimate: bool = typer.Option(False, "--no-fg-estimate",
                                        help="Use raw pixel colours instead of estimating the foreground (faster, halos)."),
    max_pixels: int = typer.Option(100_000_000, "--max-pixels", min=1,
                                   help="Refuse images larger than this many pixels (decompression-bomb guard)."),
) -> None:
    """Cut people out of photos: write a transparent PNG (or matte, foreground, composite) per photo."""
    from greenless.errors import GreenlessError

    from greenless.registry import resolve_weights

    fg_estimate = not no_fg_estimate
    weights = resolve_weights(weights, model, engine.value, job=None)
    settings = dict(weights=weights, engine=engine.value, ref_size=ref_size, threads=threads, guide=guide)
    if background is not None and kind is not OutputKind.composite:  # silently ignoring it would surprise
        raise GreenlessError(f"--background is for --write composite, not --write {kind.value}")
    background = background if background is not None else "white"
    # A bad --background would fail every photo: check (and decode) it once, before anything else.
    bg = parse_background(background, max_pixels=max_pixels) if kind is OutputKind.composite else background
    bg_file = Path(background) if kind is OutputKind.composite and not isinstance(bg, tuple) else None
    if "-" in inputs:
        if len(inputs) > 1:
            raise GreenlessError("- (stdin) must be the only input")
        _run_one(None, output, kind, bg, fg_estimate, max_pixels, settings, bg_file)
        return
    files, problems, many = expand_inputs(inputs)
    if not many and not problems:
        _run_one(files[0], output, kind, bg, fg_estimate, max_pixels, settings, bg_file)
        return
    if output == "-":
        raise GreenlessError("-o - (stdout) takes a single input")
    if output is not None and Path(output).exists() and not Path(output).is_dir():
        raise GreenlessError(f"{output}: with several inputs -o must be a folder, and this is a file")
    if output is not None and Path(output).suffix.lower() in {".png", ".jpg", ".jpeg", ".webp"} and not Path(output).is_dir():
        raise GreenlessError(f"{output}: with several inputs -o must be a folder, not an image file name")
    if not files:
        raise GreenlessError("; ".join(problems))
    failures = _run_many(files, inputs, output, kind, bg, fg_estimate, max_pixels, settings, problems, bg_file)
    if failures:
        # SystemExit, not typer.Exit: main() runs the app with standalone_mode=False, where Exit codes are returned, not raised.
        raise SystemExit(1)


def _make_matter(settings: dict):
    from greenless import load_matter

    return load_matter(**settings)


def _run_one(src: Path | None, output: str | None, kind: OutputKind, background: object, fg_estimate: bool,
             max_pixels: int, settings: dict, background_file: Path | None = None) -> None:
    """One photo (``src`` None: stdin): decode first so bad input fails before the model loads, then write.

    The result goes to stdout when ``-o -`` is given, or when reading stdin without ``-o``. A target that
    is the input or the background image is refused before anything is read.
    """
    from greenless.errors import GreenlessError
    from greenless.media.images import encode_image, load_rgb, save_image_atomic, write_stdout
    from greenless.pipeline.compose import render

    to_stdout = output == "-" or (src is None and output is None)
    if to_stdout:
        target = None
    elif src is None:
        if _is_folder_target(output):  # type: ignore[arg-type]
            raise GreenlessError(f"{output}: with stdin input, -o must name a file (.png, .jpg or .webp)")
        target = Path(output)  # type: ignore[arg-type]
    else:
        target = single_output(src, kind, output)
    if target is not None:
        refuse_overwrite(target, {"the input": src, "the background image": background_file})
    fmt = _output_format(target, kind)
    if src is None:
        if sys.stdin.isatty():
            raise GreenlessError("-: no image piped on stdin")
        rgb = load_rgb(sys.stdin.buffer.read(), max_pixels=max_pixels, name="<stdin>")
    else:
        rgb = load_rgb(src, max_pixels=max_pixels)
    alpha = _make_matter(settings).matte(rgb)
    result = render(kind, rgb, alpha, background, fg_estimate=fg_estimate, max_pixels=max_pixels)
    if target is None:
        write_stdout(encode_image(result, fmt))
    else:
        save_image_atomic(target, result, fmt)
        print(f"wrote {target}", file=sys.stderr)


def _run_many(files: list[Path], inputs: list[str], output: str | None, kind: OutputKind, background: object,
              fg_estimate: bool, max_pixels: int, settings: dict, problems: list[str],
              background_file: Path | None = None) -> int:
    """Several photos with a progress bar; a bad file is one error line and is skipped. Returns the failure count.

    A target that is an input or the background image on disk refuses the whole run before any work.
    """
    from concurrent.futures import Future, ThreadPoolExecutor

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeRemainingColumn
    from rich.text import Text

    from greenless.errors import GreenlessError
    from greenless.media.images import load_rgb, save_image_atomic
    from greenless.pipeline.compose import render

    class RateColumn(ProgressColumn):
        """Files per second (the task's running speed)."""

        def render(self, task) -> Text:  # type: ignore[override]
            speed = task.finished_speed or task.speed
            return Text(f"{speed:.2f} files/s" if speed else "- files/s", style="progress.data.speed")

    targets = batch_outputs(files, inputs, output, kind)
    refuse_batch_overwrites(targets, files, background_file)
    fmt = "PNG"
    console = Console(stderr=True)
    failures = len(problems)

    def report(message: str) -> None:
        line = f"greenless: error: {message}"
        if console.is_terminal:
            console.print(line, markup=False, highlight=False, soft_wrap=True)
        else:
            print(line, file=sys.stderr, flush=True)

    for message in problems:
        report(message)
    matter = _make_matter(settings)
    progress = Progress(TextColumn("matting"), BarColumn(), MofNCompleteColumn(), RateColumn(),
                        TimeRemainingColumn(), console=console, disable=not console.is_terminal, transient=False)
    # Decoding the next photo and encoding the previous result overlap with the network (Pillow, zlib and
    # onnxruntime all release the GIL); results still complete, and are reported, in input order.
    written = 0
    with progress, ThreadPoolExecutor(max_workers=2) as pool:
        task = progress.add_task("matting", total=len(files))
        pending: Future | None = None

        def finish(job: Future | None) -> None:
            nonlocal written, failures
            if job is None:
                return
            try:
                job.result()
                written += 1
            except GreenlessError as exc:
                failures += 1
                report(str(exc))
            progress.advance(task)

        next_load = pool.submit(load_rgb, files[0], max_pixels=max_pixels)
        for i, (src, target) in enumerate(zip(files, targets)):
            loading = next_load
            if i + 1 < len(files):
                next_load = pool.submit(load_rgb, files[i + 1], max_pixels=max_pixels)
            try:
                rgb = loading.result()
                result = render(kind, rgb, matter.matte(rgb), background, fg_estimate=fg_estimate, max_pixels=max_pixels)
            except GreenlessError as exc:
                finish(pending)
                pending = None
                failures += 1
                report(str(exc))
                progress.advance(task)
                continue
            finish(pending)
            pending = pool.submit(save_image_atomic, target, result, fmt)
        finish(pending)
    print(f"wrote {written} of {len(files)} file(s) to {_where(targets, output)}", file=sys.stderr)
    return failures


def _where(targets: list[Path], output: str | None) -> str:
    """Where a multi-photo run wrote: ``-o``'s folder, else the folder(s) the default names chose
    (``FOLDER/greenless``, or beside loose photos), so ``matte .`` tells the user where to look."""
    if output:
        return output
    folders = list(dict.fromkeys(str(t.parent) for t in targets))
    shown = ", ".join(folders[:3]) + (f" and {len(folders) - 3} more folders" if len(folders) > 3 else "")
    return shown
