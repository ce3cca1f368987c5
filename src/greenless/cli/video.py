"""``greenless video``: matte a video file or a folder of frames into a composite, alpha, RGBA or foreground video."""

from __future__ import annotations

from pathlib import Path

import typer

from greenless.cli import app, guide_option, model_option, ref_size_option


def progress_bar():  # noqa: ANN201 - rich type imported lazily
    """A Rich progress bar on stderr showing frames, fps and ETA."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[fps]:>6.1f} fps"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
        console=Console(stderr=True), transient=False,
    )


@app.command()
def video(
    input: Path = typer.Argument(..., help="Video file (mp4, mkv, mov, webm, gif...) or a folder of frames."),
    output: Path = typer.Option(..., "-o", "--out",
                                help="Output .mp4/.webm/.mov/.mkv, or a name without extension for a PNG sequence."),
    mode: str = typer.Option("composite", "--output", help="composite | alpha | rgba | foreground."),
    background: str = typer.Option("green", "--background", "-b",
                                   help="Colour (name, #rrggbb, r,g,b), image, or video (loops) behind the person."),
    no_ofd: bool = typer.Option(False, "--no-ofd", help="Turn off one-frame-delay flicker removal."),
    temporal: str | None = typer.Option(None, "--temporal",
                                        help="prev-alpha | ofd | none (default: prev-alpha for 4-channel weights such as the default model, else ofd)."),
    ofd_tol: float = typer.Option(0.1, "--ofd-tol", help="OFD tolerance on alpha in [0, 1]."),
    ref_size: int | None = ref_size_option(),
    engine: str = typer.Option("onnx", "--engine", help="onnx (default) or torch."),
    weights: Path | None = typer.Option(None, "--weights", help="Weights file (.onnx, .safetensors); default: packaged."),
    model: str | None = model_option(),
    guide: str | None = guide_option(),
    batch: int = typer.Option(2, "--batch", help="Frames per engine call."),
    fps: float | None = typer.Option(None, "--fps", help="Frame rate of a folder of frames (default 25)."),
    max_frames: int | None = typer.Option(None, "--max-frames", help="Stop after this many frames."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Matte a video: person composited on a background, the alpha matte, a transparent video, or the foreground."""
    import itertools

    from greenless.errors import GreenlessError
    from greenless.matter import REALTIME_MODEL, Matter, resolve_weights
    from greenless.media.video import choose_encoder, is_video_output, open_video, open_writer
    from greenless.pipeline.video import OUTPUT_MODES, Background, VideoPipeline, resolve_temporal

    # Streams default to the real-time network (4 channels: previous-alpha feedback).
    weights = resolve_weights(weights, model, engine, default=REALTIME_MODEL)
    if mode not in OUTPUT_MODES:
        raise GreenlessError(f"unknown --output {mode!r}; choose one of {', '.join(OUTPUT_MODES)}")
    if batch < 1:
        raise GreenlessError("--batch must be at least 1")
    if not input.exists():
        raise GreenlessError(f"{input}: file not found")
    if is_video_output(output):
        choose_encoder(output, alpha=mode == "rgba")  # fail on e.g. rgba -> .mp4 before any work
    if output.resolve() == input.resolve():
        raise GreenlessError(f"{output}: output would overwrite the input")

    reader = open_video(input, fps=fps)
    try:
        matter = Matter(weights, engine=engine, ref_size=ref_size, guide=guide)
        method = resolve_temporal(temporal, matter.engine.in_channels, ofd=not no_ofd, weights=weights)
        bg = Background(background, reader.width, reader.height) if mode == "composite" else None
        audio = input if is_video_output(output) and reader.audio_streams else None
        writer = open_writer(output, reader.width, reader.height, reader.fps, alpha=mode == "rgba",
                             time_base=reader.time_base, audio_source=audio)
        if reader.audio_streams and not is_video_output(output):
            writer.notes.append("a PNG sequence holds no audio; the input's audio was not kept")
        total = reader.frame_count or None
        if max_frames is not None:
            total = min(total or max_frames, max_frames)
        frames = itertools.islice(iter(reader), max_frames) if max_frames is not None else iter(reader)
        try:
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

                pipeline = VideoPipeline(matter, mode=mode, background=bg, temporal=method, batch=batch,
                                         ofd_tol=ofd_tol, on_frame=on_frame)
                stats = pipeline.run(frames, writer, gray_as_rgb=is_video_output(output))
                progress.update(task, total=stats.frames, completed=stats.frames)
            if stats.interrupted:
                if stats.frames == 0:
                    writer.abort()
                    raise GreenlessError(f"interrupted before any frame was written; {output} not created")
                writer.close()
                typer.echo(f"greenless: interrupted: wrote the first {stats.frames} frames to {output}", err=True)
                raise SystemExit(130)
            writer.close()
        except BaseException:
            writer.abort()
            raise
        finally:
            if bg is not None:
                bg.close()
        for note in writer.notes:
            typer.echo(f"note: {note}", err=True)
        typer.echo(f"wrote {output} ({stats.frames} frames, {stats.fps:.1f} fps, temporal: {method})", err=True)
    finally:
        reader.close()


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
