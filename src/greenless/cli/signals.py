"""Stop requests by signal, handled like Ctrl-C: SIGINT, SIGTERM (``kill``, ``timeout``, ``docker stop``), SIGHUP.

Python turns only SIGINT into ``KeyboardInterrupt``; SIGTERM and SIGHUP kill the process on the spot, so no
``finally`` runs and the hidden ``.NAME.*.part`` files and ``.NAME.*.part/`` folders of unfinished outputs
stay behind. While a command runs, all three raise :class:`Interrupted` (a ``KeyboardInterrupt``) in the
main thread instead, so every cleanup path written for Ctrl-C runs for them too, and the process ends with
the shell's code for the signal (128 + its number: 130, 143, 129).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

#: The signals handled like Ctrl-C (SIGHUP does not exist on Windows).
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))

_received: list[int] = []


class Interrupted(KeyboardInterrupt):
    """A stop request by signal ``signum``; a ``KeyboardInterrupt``, so Ctrl-C handling catches it too."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal_name(signum))
        self.signum = signum

    @property
    def exit_code(self) -> int:
        """The code a shell reports for a process stopped by this signal (130 for SIGINT, 143 for SIGTERM)."""
        return 128 + self.signum


def signal_name(signum: int) -> str:
    """``SIGTERM`` for 15, and so on."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def _raise(signum: int, frame: Any) -> None:
    _received.append(signum)
    raise Interrupted(signum)


def last_signal() -> int:
    """The last stop signal received while handlers were installed (SIGINT when none: a plain
    ``KeyboardInterrupt``, e.g. raised by a test)."""
    return _received[-1] if _received else signal.SIGINT


def received_signal() -> int | None:
    """The last stop signal received while handlers were installed, None when none was."""
    return _received[-1] if _received else None


def interruption(exc: BaseException | None = None) -> tuple[str, int]:
    """(signal name, exit code) for an interruption: from ``exc`` when it is (or was caused by) an
    :class:`Interrupted`, else from the last signal received."""
    while exc is not None and not isinstance(exc, Interrupted):
        exc = exc.__cause__ or exc.__context__
    signum = exc.signum if isinstance(exc, Interrupted) else last_signal()
    return signal_name(signum), 128 + signum


@contextmanager
def signals_as_interrupts() -> Iterator[None]:
    """Within the block, SIGINT, SIGTERM and SIGHUP raise :class:`Interrupted` in the main thread.

    Signals the parent asked to ignore (``nohup`` ignores SIGHUP, background jobs SIGINT) stay ignored.
    Outside the main thread (where handlers cannot be set) this does nothing. The previous handlers come
    back at the end, so in-process callers (tests) keep their own.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous: dict[int, Any] = {}
    _received.clear()
    for sig in STOP_SIGNALS:
        try:
            if signal.getsignal(sig) != signal.SIG_IGN:
                previous[sig] = signal.signal(sig, _raise)
        except (OSError, ValueError):  # not settable here
            continue
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
