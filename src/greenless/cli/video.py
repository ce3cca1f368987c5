"""``greenless video``: matte a video file or a folder of frames into a composite, alpha, RGBA or foreground video."""

from __future__ import annotations

from pathlib import Path
from typing import Any, NoReturn

import typer

from greenless.cli import (
    EngineName,
    app,
    engine_option,
    guide_option,
    max_pixels_option,
    model_option,
    ref_size_option,
    refuse_overwrite,
)
from greenless.cli.flags import background_option, out_option, write_option
from greenless.pipeline.compose import OutputKind

MIN_FPS, MAX_FPS = 0.001, 1000.0  # what the writers turn into a usable time base (1/1000 s .. 1000 s a frame)


def progress_bar():  # noqa: ANN201 - rich type imported lazily
    """A Rich progress bar on stderr showing frames, fps and ETA."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[fps]:>6.1f} fps"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
        console=Console(stderr=True), transient=False,
    )


@app.command()
def video(
    input: Path = typer.Argument(..., help="Video file (mp4, mkv, mov, webm, gif...) or a folder of frames."),
    output: Path = out_option("Output .mp4/.webm/.mov/.mkv, or a name without extension for a PNG sequence.",
                              required=True),
    mode: OutputKind = write_option(OutputKind.composite),
    background: str = background_option("green", "Colour (name, #rrggbb, r,g,b), image, video (loops) or blur "
                                        "behind the person."),
    no_ofd: bool = typer.Option(False, "--no-ofd", help="Turn off one-frame-delay flicker removal."),
    temporal: str | None = typer.Option(None, "--temporal",
                                        help="prev-alpha (feed back the previous matte) | ofd | none; OFD runs on "
                                             "top of prev-alpha unless --no-ofd (default: ofd for guided weights such "
                                             "as the default model, which then get the guide on every frame; "
                                             "prev-alpha for other 4-channel weights; else ofd)."),
    ofd_tol: float = typer.Option(0.1, "--ofd-tol", help="OFD tolerance on alpha in [0, 1]."),
    ref_size: int | None = ref_size_option(),
    engine: EngineName = engine_option(),
    weights: Path | None = typer.Option(None, "-w", "--weights", help="Weights file (.onnx, .safetensors); default: packaged."),
    model: str | None = model_option(),
    guide: str | None = guide_option(),
    batch: int | None = typer.Option(None, "--batch", help="Frames per engine call (default 2; 16 on the device path)."),
    device: str | None = typer.Option(None, "--device", help="Run on this torch device (cuda, cuda:1, cpu; implies "
                                      "--engine torch): frames batched, resized and matted on the device, guides in "
                                      "parallel threads. --engine torch on a machine with CUDA does this too."),
    fps: float | None = typer.Option(None, "--fps",
                                     help=f"Frame rate of a folder of frames (default 25; {MIN_FPS:g} to {MAX_FPS:g})."),
    max_frames: int | None = typer.Option(None, "--max-frames", help="Stop after this many frames (at least 1)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    max_pixels: int = max_pixels_option(),
) -> None:
    """Matte a video: person composited on a background, the alpha matte, a transparent video, or the foreground."""
    import itertools

    from greenless.errors import GreenlessError
    from greenless.matter import Matter
    from greenless.media.video import check_output, is_video_output, open_video, open_writer
    from greenless.pipeline.compose import parse_color
    from greenless.pipeline.streaming import StreamSetup, open_stream
    from greenless.pipeline.video import Background, VideoPipeline
    from greenless.registry import resolve_weights

    engine = EngineName.torch if device is not None else engine
    weights = resolve_weights(weights, model, engine, job="stream")  # the registry's stream default
    check_numbers(batch=batch, fps=fps, max_frames=max_frames, ofd_tol=ofd_tol)
    if not input.exists():
        from greenless.media.files import missing_reason

        raise GreenlessError(f"{input}: {missing_reason(input)}")
    check_output(output, alpha=mode == "rgba")  # fail on e.g. rgba -> .mp4 or out.txt before any work
    background_file = (Path(background) if mode == "composite" and background.lower() != "blur"
                       and parse_color(background) is None and Path(background).is_file() else None)
    refuse_overwrite(output, {"the input": input, "the background": background_file})
    existed = output.exists()  # an interrupted run must never replace it

    reader = open_video(input, fps=fps, max_pixels=max_pixels)
    setup: StreamSetup | None = None
    try:
        # The stream job's defaults (model, reference size, guide, temporal policy) come from the registry;
        # the path (per frame or batched on a device), its renderer and batch size from the stream factory.
        matter = Matter(weights, engine=engine, ref_size=ref_size, guide=guide, stream=True, device=device)
        setup = open_stream(matter, batch=batch, temporal=temporal, ofd=not no_ofd, ofd_tol=ofd_tol)
        method = setup.label
        bg = Background(background, reader.width, reader.height, max_pixels) if mode == "composite" else None
        audio = input if is_video_output(output) and reader.audio_streams else None
        writer = open_writer(output, reader.width, reader.height, reader.fps, alpha=mode == "rgba",
                             time_base=reader.time_base, audio_source=audio)
        try:  # from here on any failure drops the partial output (the writer's .part file or folder)
            if reader.audio_streams and not is_video_output(output):
                writer.notes.append("a PNG sequence holds no audio; the input's audio was not kept")
            total = reader.frame_count or None
            if max_frames is not None:
                total = min(total or max_frames, max_frames)
            frames = itertools.islice(iter(reader), max_frames) if max_frames is not None else iter(reader)
            with progress_bar() if not quiet else _NoProgress() as progress:
                task = progress.add_task(input.name, total=total, fps=0.0)
                clock = {"start": 0.0, "done": 0}

                def on_frame(n: int) -> None:
                    import time

                    now = time.perf_counter()
                    clock["start"] = clock["start"] or now
                    clock["done"] += n
                    elapsed = now - clock["start"]
                    progress.update(task, advance=n, fps=(clock["done"] - 1) / elapsed if elapsed > 0 else 0.0)

                pipeline = VideoPipeline(setup.matter, mode=mode.value, background=bg, batch=setup.batch,
                                         on_frame=on_frame, stream=setup.stream, renderer=setup.render)
                stats = pipeline.run(frames, writer, gray_as_rgb=is_video_output(output))
                progress.update(task, total=stats.frames, completed=stats.frames)
            if stats.interrupted:
                finish_interrupted(writer, output, existed, stats.frames, total)
            writer.close()
        except BaseException:
            writer.abort()
            raise
        finally:
            if bg is not None:
                bg.close()
        for note in writer.notes:
            typer.echo(f"note: {note}", err=True)
        network_fps = setup.network_fps()
        network = f"; network alone {network_fps:.1f} fps" if network_fps is not None else ""
        typer.echo(f"wrote {output} ({stats.frames} frames, {stats.fps:.1f} fps end to end{network}, temporal: {method})",
                   err=True)
    finally:
        reader.close()
        if setup is not None:
            setup.close()


def finish_interrupted(writer: Any, output: Path, existed: bool, frames: int, total: int | None) -> NoReturn:
    """End a run stopped by Ctrl-C, SIGTERM or SIGHUP: one line on stderr, the signal's exit code (130, 143, 129).

    An output that existed before the run is never replaced by a partial one: the writer's hidden
    ``.part`` file or folder is dropped and the old output stays byte for byte. A new output keeps the
    frames written so far, finalised so it plays, and the line says it is partial.
    """
    from greenless.cli.signals import interruption

    name, status = interruption()
    if existed or frames == 0:
        writer.abort()
        kept = f"{output} left unchanged" if existed else f"{output} not created"
        typer.echo(f"greenless: error: interrupted ({name}) after {frames} frames; {kept}", err=True)
        raise SystemExit(status)
    writer.close()
    of = f" of {total}" if total else ""
    typer.echo(f"greenless: error: interrupted ({name}); {output} is partial: the first {frames}{of} frames",
               err=True)
    raise SystemExit(status)


def check_numbers(batch: int | None, fps: float | None, max_frames: int | None, ofd_tol: float) -> None:
    """One ``GreenlessError`` for a numeric option out of range, before any file is opened or created.

    Typer's own ranges let ``nan`` through (every comparison with it is false), and these values used to
    surface as tracebacks deep in the reader or writer (``--fps nan``/``inf``, ``--max-frames -1``, which
    also left a 0-byte .part file) or, for ``--ofd-tol 5``, as a silently meaningless setting.
    """
    import math

    from greenless.errors import GreenlessError

    if batch is not None and batch < 1:
        raise GreenlessError(f"--batch must be at least 1, not {batch}")
    if fps is not None and not (math.isfinite(fps) and MIN_FPS <= fps <= MAX_FPS):
        raise GreenlessError(f"--fps must be a number from {MIN_FPS:g} to {MAX_FPS:g}, not {fps:g}")
    if max_frames is not None and max_frames < 1:
        raise GreenlessError(f"--max-frames must be at least 1, not {max_frames}")
    if not (math.isfinite(ofd_tol) and 0.0 <= ofd_tol <= 1.0):
        raise GreenlessError(f"--ofd-tol is a tolerance on alpha and must be between 0 and 1, not {ofd_tol:g}")


class _NoProgress:
    """Stand-in for the Rich progress bar under --quiet."""

    def __enter__(self) -> _NoProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def add_task(self, *args: object, **kwargs: object) -> int:
        return 0

    def update(self, *args: object, **kwargs: object) -> None:
        return None
