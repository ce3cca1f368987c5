"""``greenless matte``: photos, folders, globs or stdin in; cut-outs, mattes, foregrounds or composites out;
``--watch`` mattes a folder's photos as they arrive.

Which files are read and where results go is ``greenless.media.naming``'s rule (its docstring says it); the
matting of many files and of a watched folder is ``greenless.pipeline.photos``. An explicit output that is an
input (the same path, a symlink to it or a hard link of it), or the background image, is refused before any work.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer

from greenless.cli import (
    EngineName,
    app,
    detail_settings,
    engine_option,
    guide_option,
    max_pixels_option,
    model_option,
    ref_size_option,
    refine_option,
    refuse_overwrite,
    threads_option,
)
from greenless.cli.flags import background_option, out_option, write_option
from greenless.media.naming import (  # noqa: F401
    batch_outputs,
    expand_inputs,
    is_folder_target,
    refuse_batch_overwrites,
    single_output,
)
from greenless.pipeline.compose import OutputKind, parse_background
from greenless.pipeline.photos import PhotoJob


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
    watch: bool = typer.Option(False, "--watch", help="Keep watching the one folder given: matte photos as they "
                               "arrive or change (into -o, default FOLDER/greenless) until Ctrl-C."),
    ref_size: int | None = ref_size_option(),
    engine: EngineName = engine_option(),
    weights: Path | None = typer.Option(None, "-w", "--weights", help="Weights file (.onnx, .safetensors or official .ckpt)."),
    model: str | None = model_option(),
    guide: str | None = guide_option(),
    refine: str | None = refine_option(),
    refine_band: float | None = typer.Option(None, "--refine-band", metavar="FRACTION",
                                             help="Half-width of the detail stage's unknown band, as a fraction of "
                                             "the short side (default 0.02)."),
    refine_fg: float | None = typer.Option(None, "--refine-fg", metavar="ALPHA",
                                           help="Matte at or above this is sure foreground (default 0.98)."),
    refine_bg: float | None = typer.Option(None, "--refine-bg", metavar="ALPHA",
                                           help="Matte or guide at or below this is sure background (default 0.02)."),
    threads: int | None = threads_option(),
    no_fg_estimate: bool = typer.Option(False, "--no-fg-estimate",
                                        help="Use raw pixel colours instead of estimating the foreground (faster, halos)."),
    max_pixels: int = max_pixels_option(),
) -> None:
    """Cut people out of photos: write a transparent PNG (or matte, foreground, composite) per photo."""
    from greenless.errors import GreenlessError
    from greenless.registry import resolve_weights

    weights = resolve_weights(weights, model, engine.value, job=None)
    settings = dict(weights=weights, engine=engine.value, ref_size=ref_size, threads=threads, guide=guide,
                    refine=refine, detail=detail_settings(refine_band, refine_fg, refine_bg))
    job, bg_file = photo_job(kind, background, not no_fg_estimate, max_pixels)
    if watch:
        _watch(inputs, output, job, settings)
        return
    if "-" in inputs:
        if len(inputs) > 1:
            raise GreenlessError("- (stdin) must be the only input")
        _run_one(None, output, job, settings, bg_file)
        return
    files, problems, many = expand_inputs(inputs)
    if not many and not problems:
        _run_one(files[0], output, job, settings, bg_file)
        return
    check_folder_output(output, "with several inputs")
    if not files:
        raise GreenlessError("; ".join(problems))
    if _run_many(files, inputs, output, job, settings, problems, bg_file):
        # SystemExit, not typer.Exit: main() runs the app with standalone_mode=False, where Exit codes are returned, not raised.
        raise SystemExit(1)


def photo_job(kind: OutputKind, background: str | None, fg_estimate: bool, max_pixels: int) -> tuple[PhotoJob, Path | None]:
    """The ``PhotoJob`` the options ask for, and the background image's path (None for a colour).

    A bad ``--background`` would fail every photo: it is read (and decoded) once, here, before anything else.
    """
    from greenless.errors import GreenlessError

    if background is not None and kind is not OutputKind.composite:  # silently ignoring it would surprise
        raise GreenlessError(f"--background is for --write composite, not --write {kind.value}")
    spec = background if background is not None else "white"
    bg = parse_background(spec, max_pixels=max_pixels) if kind is OutputKind.composite else spec
    bg_file = Path(spec) if kind is OutputKind.composite and not isinstance(bg, tuple) else None
    return PhotoJob(kind, bg, fg_estimate, max_pixels), bg_file


def check_folder_output(output: str | None, why: str) -> None:
    """One error line when ``-o`` cannot be the folder a run of several results needs (``why`` says which run)."""
    from greenless.errors import GreenlessError

    if output == "-":
        raise GreenlessError(f"-o - (stdout) takes a single input, not a run {why}")
    if output is not None and Path(output).exists() and not Path(output).is_dir():
        raise GreenlessError(f"{output}: {why} -o must be a folder, and this is a file")
    if output is not None and Path(output).suffix.lower() in {".png", ".jpg", ".jpeg", ".webp"} and not Path(output).is_dir():
        raise GreenlessError(f"{output}: {why} -o must be a folder, not an image file name")


def _make_matter(settings: dict) -> Any:
    from greenless import load_matter

    return load_matter(**settings)


def _run_one(src: Path | None, output: str | None, job: PhotoJob, settings: dict,
             background_file: Path | None = None) -> None:
    """One photo (``src`` None: stdin): decode first so bad input fails before the model loads, then write.

    The result goes to stdout when ``-o -`` is given, or when reading stdin without ``-o``. A target that
    is the input or the background image is refused before anything is read.
    """
    from greenless.errors import GreenlessError
    from greenless.media.files import check_writable_folder
    from greenless.media.images import encode_image, load_rgb, save_image_atomic, write_stdout

    to_stdout = output == "-" or (src is None and output is None)
    if to_stdout:
        target = None
    elif src is None:
        if is_folder_target(output):  # type: ignore[arg-type]
            raise GreenlessError(f"{output}: with stdin input, -o must name a file (.png, .jpg or .webp)")
        target = Path(output)  # type: ignore[arg-type]
    else:
        target = single_output(src, job.kind, output)
    if target is not None:
        refuse_overwrite(target, {"the input": src, "the background image": background_file})
        check_writable_folder(target.parent, target)
    elif sys.stdout is None:  # started with stdout closed (>&-): nowhere to put the result
        raise GreenlessError("-o -: standard output is closed; give -o FILE")
    fmt = _output_format(target, job.kind)
    if src is None:
        if sys.stdin is None:  # started with stdin closed (<&-)
            raise GreenlessError("-: standard input is closed; pipe an image into it")
        if sys.stdin.isatty():
            raise GreenlessError("-: no image piped on stdin")
        rgb = load_rgb(sys.stdin.buffer, max_pixels=job.max_pixels, name="<stdin>")  # read within the budget's bound
    else:
        rgb = job.load(src)
    result = job.result(_make_matter(settings), rgb)
    if target is None:
        write_stdout(encode_image(result, fmt))
    else:
        save_image_atomic(target, result, fmt)
        print(f"wrote {target}", file=sys.stderr)


def _run_many(files: list[Path], inputs: list[str], output: str | None, job: PhotoJob, settings: dict,
              problems: list[str], background_file: Path | None = None) -> int:
    """Several photos with a progress bar; a bad file is one error line and is skipped. Returns the failure count.

    A target that is an input or the background image on disk refuses the whole run before any work.
    """
    from rich.console import Console

    from greenless.cli.report import error_line, files_progress
    from greenless.media.files import check_writable_folder
    from greenless.pipeline.photos import matte_files

    targets = batch_outputs(files, inputs, output, job.kind)
    refuse_batch_overwrites(targets, files, background_file)
    for folder in dict.fromkeys(t.parent for t in targets):  # one line, not one per photo after the model ran
        check_writable_folder(folder, output if output is not None else folder)
    console = Console(stderr=True)
    for message in problems:
        error_line(console, message)
    failures = len(problems)
    matter = _make_matter(settings)
    with files_progress(console) as progress:
        task = progress.add_task("matting", total=len(files))

        def on_result(src: Path, target: Path, error: Exception | None) -> None:
            nonlocal failures
            if error is not None:
                failures += 1
                error_line(console, str(error))
            progress.advance(task)

        written = matte_files(matter, files, targets, job, on_result)
    if written:  # when nothing was written, each failure's own line already said why: no "wrote 0" line
        print(f"wrote {written} of {len(files)} file(s) to {_where(targets, output)}", file=sys.stderr)
    return failures


def _watch(inputs: list[str], output: str | None, job: PhotoJob, settings: dict) -> None:
    """``--watch``: matte the folder's photos as they arrive until Ctrl-C or SIGTERM, then one summary line."""
    from greenless.cli.signals import interruption
    from greenless.errors import GreenlessError
    from greenless.pipeline.photos import check_watch, watch_folder

    if len(inputs) != 1:
        raise GreenlessError("--watch takes one folder to watch")
    check_folder_output(output, "with --watch")
    folder = Path(inputs[0])
    out = Path(output) if output is not None else folder / "greenless"
    check_watch(folder, out)
    counts = {"written": 0, "failed": 0}

    def on_result(src: Path, target: Path, error: Exception | None) -> None:
        counts["failed" if error else "written"] += 1
        print(f"greenless: error: {error}" if error else f"wrote {target}", file=sys.stderr, flush=True)

    matter = _make_matter(settings)
    print(f"watching {folder} for photos; results go to {out} (Ctrl-C stops)", file=sys.stderr, flush=True)
    try:
        watch_folder(matter, folder, out, job, on_result)
    except KeyboardInterrupt as exc:
        name, _ = interruption(exc)
        failed = f", {counts['failed']} failed" if counts["failed"] else ""
        print(f"stopped watching {folder} ({name}): wrote {counts['written']} file(s) to {out}{failed}",
              file=sys.stderr, flush=True)
    if counts["failed"]:
        raise SystemExit(1)


def _where(targets: list[Path], output: str | None) -> str:
    """Where a multi-photo run wrote: ``-o``'s folder, else the folder(s) the default names chose
    (``FOLDER/greenless``, or beside loose photos), so ``matte .`` tells the user where to look."""
    if output:
        return output
    folders = list(dict.fromkeys(str(t.parent) for t in targets))
    shown = ", ".join(folders[:3]) + (f" and {len(folders) - 3} more folders" if len(folders) > 3 else "")
    return shown
