"""The CLI's exit rules for the repository's own scripts (``scripts/``, ``benchmarks/``).

A script's ``main`` runs under :func:`run_script`: a :class:`~greenless.errors.GreenlessError` (bad or missing
input), a missing file or a missing optional package ends in one ``PROG: error: ...`` line on stderr and exit
code 2; Ctrl-C, SIGTERM and SIGHUP end in one ``PROG: interrupted (SIGINT)`` line and the shell's code for the
signal (130, 143, 129), with every ``finally`` run on the way out (see :mod:`greenless.cli.signals`). Any other
exception is a bug and keeps its traceback. :func:`need_path` checks an input before any work starts, and
:func:`progress` shows progress on stderr, so a script's table or JSON on stdout stays clean.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sized
from pathlib import Path
from typing import Any, TypeVar

from greenless.cli.signals import interruption, signals_as_interrupts
from greenless.errors import GreenlessError

T = TypeVar("T")
PLAIN_EVERY_S = 5.0  # seconds between two plain progress lines when stderr is not a terminal


def run_script(main: Callable[[], Any], prog: str | None = None) -> None:
    """Run ``main()`` with the CLI's exits: one stderr line on user errors and interruptions, never a traceback.

    ``prog`` (default: the script's file name) starts each line. A ``SystemExit`` from ``main`` (argparse's
    usage errors, ``--help``, ``raise SystemExit("message")``) passes through unchanged.
    """
    prog = prog or Path(sys.argv[0]).name
    try:
        with signals_as_interrupts():
            code = main()
    except GreenlessError as exc:
        _fail(prog, f"error: {exc}", 2)
    except FileNotFoundError as exc:  # an input that vanished, or one a library opened without a check first
        _fail(prog, f"error: {exc.filename or exc}: no such file or folder", 2)
    except ModuleNotFoundError as exc:  # an optional package: the script's docstring names its extra
        _fail(prog, f"error: the Python package {exc.name!r} is missing (see this script's docstring for its extra)", 2)
    except KeyboardInterrupt as exc:
        name, status = interruption(exc)
        _fail(prog, f"interrupted ({name})", status)
    if isinstance(code, int) and code:
        raise SystemExit(code)


def _fail(prog: str, message: str, code: int) -> None:
    print(f"{prog}: {message}", file=sys.stderr)
    raise SystemExit(code)


def need_path(path: Path, what: str, kind: str = "any", hint: str = "") -> Path:
    """``path`` if it exists (as a ``kind``: ``"file"``, ``"dir"`` or ``"any"``), else a one-line ``GreenlessError``.

    ``what`` names the input ("the training data"); ``hint`` says how to get it ("build it with ...").
    """
    ok = {"file": path.is_file, "dir": path.is_dir, "any": path.exists}[kind]()
    if not ok:
        noun = {"file": "file", "dir": "folder", "any": "file or folder"}[kind]
        raise GreenlessError(f"{path}: no such {noun} ({what})" + (f"; {hint}" if hint else ""))
    return path


def progress(items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
    """``items``, one at a time, with progress on stderr: a Rich bar on a terminal, else a ``description i/total``
    line at the first and last item and at most every ``PLAIN_EVERY_S`` seconds between (logs show the work
    moving without a line per item)."""
    if total is None:
        total = len(items) if isinstance(items, Sized) else None
    if sys.stderr.isatty():
        from rich.console import Console
        from rich.progress import track

        yield from track(items, description=description, total=total, console=Console(stderr=True), transient=True)
        return
    shown = float("-inf")
    for i, item in enumerate(items, 1):
        now = time.monotonic()
        if i == 1 or i == total or now - shown >= PLAIN_EVERY_S:
            print(f"{description} {i}/{total if total is not None else '?'}", file=sys.stderr, flush=True)
            shown = now
        yield item
