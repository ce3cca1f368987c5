"""Connection limits for ``greenless serve``: idle and slow connections are closed, open ones are bounded.

uvicorn closes a keep-alive connection ``timeout_keep_alive`` seconds after a response, but a connection
that never sends a request, or sends its request head a byte at a time (slow loris), stays open for ever.
Each one holds a file descriptor, so about a thousand of them (the usual open-file limit is 1,024) leave
the process unable to accept anything. ``GuardedH11Protocol`` is uvicorn's own HTTP/1.1 protocol (h11)
with two rules added:

* **idle deadline**: a connection with no request in progress (before its first request, between two, or
  while a request head trickles in) is closed ``idle_timeout`` seconds after it became idle, whatever
  bytes arrive meanwhile. A request in progress (head parsed, the app running) is bounded by the app's
  own ``--timeout`` instead, which covers a body that trickles in.
* **connection cap**: at most ``max_connections`` open connections per worker, kept below the open-file
  limit. A new connection over the cap closes the connection idle the longest (so a flood of idle sockets
  cannot lock real clients out), or itself when every other one has a request in progress.

The cap only holds if sockets cannot pile up faster than they are closed: asyncio accepts up to
``backlog`` sockets per turn of the event loop, and a socket over the cap is closed about
``ACCEPT_TURNS`` turns after it was accepted. So the listen backlog is sized from the cap
(``accept_backlog``), the cap leaves room for those sockets in flight (``connection_cap``), and the loop is
plain asyncio (uvloop accepts without a per-turn bound).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import time
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from greenless.serve.settings import ServeSettings

logger = logging.getLogger("uvicorn.error")

#: File descriptors left for everything but client sockets (model files, the listening socket, epoll,
#: thread-pool wake-up pipes, logs), on top of those already open when the cap is worked out.
FD_RESERVE = 32
#: Event-loop turns from accepting a socket to closing one over the cap: the accept, the protocol and
#: transport, ``connection_made`` (which closes the longest-idle connection), and that close.
ACCEPT_TURNS = 4


def open_fd_count() -> int | None:
    """File descriptors this process has open now (Linux /proc, macOS /dev/fd), or None where neither exists."""
    for folder in ("/proc/self/fd", "/dev/fd"):
        try:
            return len(os.listdir(folder))
        except OSError:
            continue
    return None


def accept_backlog(max_connections: int) -> int:
    """The listen backlog for a cap, which is also how many sockets asyncio accepts per loop turn: 8 to 128."""
    return max(8, min(128, max_connections // 8))


def connection_cap(requested: int) -> int:
    """``requested``, lowered when the open-file limit (RLIMIT_NOFILE) would run out before that many sockets.

    The room is the soft limit less the descriptors open now and ``FD_RESERVE``; the cap plus the sockets
    that a burst can have in flight (``ACCEPT_TURNS`` x ``accept_backlog``) must fit in it. At least 1.
    """
    try:
        import resource
    except ImportError:  # Windows: no descriptor limit of this kind
        return requested
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return requested
    in_use = open_fd_count()
    room = soft - (in_use if in_use is not None else 64) - FD_RESERVE
    cap = requested
    while cap > 1 and cap + ACCEPT_TURNS * accept_backlog(cap) > room:
        cap -= 1
    return cap


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol plus an idle deadline and a cap on open connections (see the module docstring).

    uvicorn builds one per accepted connection with ``config``, ``server_state`` and ``app_state``; the two
    limits come as keywords through ``functools.partial`` (see ``uvicorn_options``), which also pickles
    into ``--workers`` processes.
    """

    def __init__(self, config: Any, server_state: Any, app_state: dict[str, Any],
                 _loop: asyncio.AbstractEventLoop | None = None, *, idle_timeout: float, max_connections: int) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.idle_timeout = idle_timeout
        self.max_connections = max_connections
        self.requests_in_progress = 0
        self.idle_since = time.monotonic()
        self._idle_timer: asyncio.TimerHandle | None = None
        app = self.app  # uvicorn calls self.app for every request whose head is complete

        async def tracked(scope: Any, receive: Any, send: Any) -> None:
            self._request_started()
            try:
                await app(scope, receive, send)
            finally:
                self._request_finished()

        self.app = tracked

    # asyncio.Protocol interface

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Register the connection (uvicorn), make room under the cap, and start the idle deadline."""
        super().connection_made(transport)
        if self._open_count() > self.max_connections:
            victim = self._longest_idle()
            if victim is None:
                logger.warning("%d connections open, all with a request in progress: new connection refused",
                               self.max_connections)
                transport.close()
                return
            logger.debug("%d connections open: closing the one idle longest", self.max_connections)
            victim.transport.close()
        self._arm_idle_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        """Stop the idle deadline, then let uvicorn clean up."""
        self._cancel_idle_timer()
        super().connection_lost(exc)

    # request tracking (called around the ASGI app)

    def _request_started(self) -> None:
        self.requests_in_progress += 1
        self._cancel_idle_timer()

    def _request_finished(self) -> None:
        self.requests_in_progress -= 1
        if self.requests_in_progress == 0 and not self.transport.is_closing():
            self.idle_since = time.monotonic()
            self._arm_idle_timer()

    # helpers

    def _open_count(self) -> int:
        """Connections of this server that are not already closing (this one included)."""
        return sum(1 for c in self.connections if c.transport is not None and not c.transport.is_closing())

    def _longest_idle(self) -> GuardedH11Protocol | None:
        """Another open connection without a request in progress, idle the longest; None when there is none."""
        idle = [c for c in self.connections if isinstance(c, GuardedH11Protocol) and c is not self
                and c.requests_in_progress == 0 and c.transport is not None and not c.transport.is_closing()]
        return min(idle, key=lambda c: c.idle_since, default=None)

    def _arm_idle_timer(self) -> None:
        self._cancel_idle_timer()
        self._idle_timer = self.loop.call_later(self.idle_timeout, self._idle_deadline)

    def _cancel_idle_timer(self) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None

    def _idle_deadline(self) -> None:
        self._idle_timer = None
        if self.requests_in_progress == 0 and not self.transport.is_closing():
            logger.debug("connection idle for %g s: closed", self.idle_timeout)
            self.transport.close()


def uvicorn_options(settings: ServeSettings) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.run`` / ``uvicorn.Config`` that apply both connection rules.

    ``settings.max_connections`` is used as given: pass it through ``connection_cap`` first so it fits the
    open-file limit (worker processes inherit the limit of the process that starts them). uvicorn's own
    keep-alive timeout is set to the same ``settings.idle_timeout``; the backlog follows the cap.
    """
    http = functools.partial(GuardedH11Protocol, idle_timeout=settings.idle_timeout,
                             max_connections=settings.max_connections)
    return {"http": http, "loop": "asyncio", "backlog": accept_backlog(settings.max_connections),
            "timeout_keep_alive": settings.idle_timeout}
