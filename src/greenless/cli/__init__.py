"""The ``greenless`` command line: a Typer app, one module per command, errors as one line on stderr.

Command modules import heavy libraries inside their functions so ``greenless matte`` starts fast.
"""

from __future__ import annotations

import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer

from greenless.card import MAX_REF_SIZE

app = typer.Typer(
    name="greenless",
    help="Trimap-free portrait matting (MODNet): cut people out of photos, videos and webcams.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

class EngineName(StrEnum):
    """Runtimes ``Matter`` can use."""

    onnx = "onnx"
    torch = "torch"


def engine_option(help: str = "Runtime: onnx or torch.") -> Any:
    """``--engine onnx|torch``: the runtime the network runs on."""
    return typer.Option(EngineName.onnx, "--engine", case_sensitive=False, help=help)


def model_option() -> Any:
    """``--model NAME``: one of the weight sets that ship inside the package."""
    from greenless.registry import DEFAULT_MODEL, MODELS

    defaults = sorted(set(DEFAULT_MODEL.values()))
    return typer.Option(None, "--model", "-m", help=f"Packaged weights: {' or '.join(MODELS)} (default: "
                        f"{', '.join(defaults)}; see the README, Models). --weights takes a file instead.")


def guide_option() -> Any:
    """``--guide selfie|none``: the semantic guide for weights that take one (default: the weights' own)."""
    return typer.Option(None, "--guide", help="Semantic guide for guided weights: selfie (the packaged segmentation "
                        "model's mask, refined by the network) or none (the pure MODNet path). Default: what the "
                        "weights were trained with.")


def refine_option() -> Any:
    """``--refine band|none``: the photo detail stage (default: the job's, band for photos)."""
    return typer.Option(None, "--refine", metavar="band|none",
                        help="Detail stage: band (re-solve the edge band at full resolution from the photo: hair, "
                        "soft edges; 1-2 s a photo) or none (the network's matte alone). Default: band for photos.")


def detail_settings(band: float | None, fg: float | None, bg: float | None) -> Any:
    """The detail stage's ``DetailSettings`` from ``--refine-band/--refine-fg/--refine-bg`` (None: all defaults)."""
    if band is None and fg is None and bg is None:
        return None
    from greenless.pipeline.detail import DetailSettings

    default = DetailSettings()
    return DetailSettings(band=default.band if band is None else band,
                          fg_threshold=default.fg_threshold if fg is None else fg,
                          bg_threshold=default.bg_threshold if bg is None else bg)


def ref_size_option(help: str = "Short side the network sees, rounded to its stride: 64 for modnet "
                    "(default: the weights' own).") -> Any:
    """``--ref-size N`` bounded to [32, MAX_REF_SIZE] as the server bounds its ``ref_size``.

    The network's memory grows with the square of the reference size: 4096 or 100000 used to end in an
    allocation failure (a traceback) deep inside the engine; out of range is now one usage error line.
    """
    return typer.Option(None, "--ref-size", min=32, max=MAX_REF_SIZE, help=f"{help} Between 32 and {MAX_REF_SIZE}.")


def lowered_to_cpus(param: typer.CallbackParam, value: int | None) -> int | None:
    """An option's callback: ``value`` lowered to the CPUs this process may use, with a note on stderr when it
    was (``--threads``, ``serve --workers``)."""
    from greenless.engines import bound_threads

    bounded = bound_threads(value)
    if bounded != value:
        typer.echo(f"note: {param.opts[0]} lowered from {value} to {bounded}, the CPUs this process may use", err=True)
    return bounded


def threads_option(help: str = "CPU threads for the engine") -> Any:
    """``--threads N``: at least 1; above the CPUs this process may use it is lowered to them, with a note
    (more only queue behind each other, and 100000 used to crash the runtime while it started them)."""
    return typer.Option(None, "--threads", min=1, callback=lowered_to_cpus,
                        help=f"{help} (default: the runtime's choice; at most the CPUs this process may use).")


def max_pixels_option() -> Any:
    """``--max-pixels N``: the pixel budget (``media.limits``) for photos, video frames and backgrounds."""
    from greenless.media.limits import DEFAULT_MAX_PIXELS

    return typer.Option(DEFAULT_MAX_PIXELS, "--max-pixels", min=1,
                        help="Refuse images, frames and backgrounds larger than this many pixels, from their "
                             "headers, before decoding (decompression-bomb guard).")


def same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """True when ``a`` and ``b`` name one file: the same path once symlinks and ``..`` are resolved, or,
    when both exist, the same file on disk (hard links, case-insensitive file systems)."""
    from greenless.media.files import real_path

    if real_path(a) == real_path(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet): different files
        return False


def refuse_overwrite(output: str | os.PathLike[str], inputs: dict[str, str | os.PathLike[str] | None]) -> None:
    """Raise ``GreenlessError`` ("output would overwrite the input") when ``output`` is one of ``inputs``.

    ``inputs`` maps a description ("the input", "the background image") to a path (None: nothing to check).
    Checked before any work, so the file the user asked to read is never replaced by its own result.
    """
    from greenless.errors import GreenlessError

    for what, path in inputs.items():
        if path is not None and same_file(output, path):
            shown = "" if Path(path) == Path(output) else f" {path}"
            raise GreenlessError(f"{output}: output would overwrite {what}{shown}")


def _print_version(value: bool) -> None:
    """``--version``: print ``greenless X.Y.Z`` on stdout and stop."""
    if value:
        from greenless import __version__

        typer.echo(f"greenless {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    """Trimap-free portrait matting (MODNet): cut people out of photos, videos and webcams."""


# Each module registers its command(s) on ``app`` when imported.
from greenless.cli import batch, bench, convert, export, matte, serve, train, video, webcam  # noqa: E402,F401
from greenless.cli import eval as _eval  # noqa: E402,F401


def fail(message: str, code: int = 2) -> None:
    """Print ``greenless: error: message`` on stderr and exit with ``code``."""
    print(f"greenless: error: {message}", file=sys.stderr)
    raise SystemExit(code)


def command_group() -> Any:
    """The click group behind ``app``, with plain metavars in help (``flags.plain_help``)."""
    from greenless.cli.flags import plain_help

    return plain_help(typer.main.get_command(app))


def hold_closed_std_fds() -> None:
    """Point a closed stdin, stdout or stderr file descriptor at /dev/null.

    Started with ``<&-`` or ``>&-``, Python sets ``sys.stdin``/``sys.stdout`` to None (commands check that
    and say so in one line), but the descriptor number itself is free: the next file opened (a model, an
    output's temporary file) would get it, and a library writing to "stdout" would write into that file. A
    closed stderr becomes a silent one (messages have nowhere to go; they must not go to stdout instead).
    """
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
    if sys.stderr is None:  # print(file=None) writes to stdout: messages would land in a result piped there
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - for the life of the process


def main(argv: list[str] | None = None) -> None:
    """Entry point: runs the app, turning user errors into one line and a non-zero exit."""
    from greenless.cli.flags import translate
    from greenless.cli.signals import interruption, received_signal, signals_as_interrupts
    from greenless.errors import GreenlessError

    hold_closed_std_fds()
    try:
        args = translate(list(sys.argv[1:] if argv is None else argv))  # old spellings, one note each
        with signals_as_interrupts():  # SIGTERM and SIGHUP stop a command as Ctrl-C does: cleanups run
            code = command_group()(args=args, prog_name="greenless", standalone_mode=False)
    except GreenlessError as exc:
        fail(str(exc))
    except KeyboardInterrupt as exc:
        name, status = interruption(exc)
        fail(f"interrupted ({name})", status)
    except Exception as exc:
        # Typer's (vendored) click raises UsageError/Exit/Abort; recognise them by shape, not import path.
        kind = type(exc).__name__
        if kind == "Exit":
            raise SystemExit(getattr(exc, "exit_code", 0)) from None
        if kind == "Abort":  # click turns a KeyboardInterrupt (our signals included) into Abort
            name, status = interruption(exc)
            fail(f"interrupted ({name})", status)
        if hasattr(exc, "format_message") and hasattr(exc, "exit_code"):
            if kind == "NoArgsIsHelpError":
                raise SystemExit(0) from None
            fail(exc.format_message().replace("\n", " "), int(exc.exit_code) or 2)
        raise
    if code == 130 and received_signal() is not None:
        # Typer turns a KeyboardInterrupt (our SIGTERM and SIGHUP too) into a silent Exit(130): say which
        # signal stopped the command and exit with its code (143 for SIGTERM), as the video command does.
        name, status = interruption()
        fail(f"interrupted ({name})", status)
    if isinstance(code, int) and code:
        raise SystemExit(code)  # typer.Exit(n) comes back as a return value without standalone mode
