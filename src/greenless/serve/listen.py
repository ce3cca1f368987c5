"""Where ``greenless serve`` listens, checked before uvicorn starts: one error line instead of its start-up log.

uvicorn reports an address it cannot bind (a bad ``--host``, a port in use) only after logging that it
started, and then exits 3. Binding a throwaway socket the way uvicorn will (IPv6 when the host has a
colon, ``SO_REUSEADDR``) finds those problems first, so the user gets one ``greenless: error:`` line and
the usage exit code (2).
"""

from __future__ import annotations

import errno
import socket

from greenless.errors import GreenlessError

#: The log levels ``--log-level`` takes (uvicorn's).
LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")


def check_log_level(level: str) -> str:
    """``level`` in lower case when it is one of LOG_LEVELS, else one error line naming them."""
    if level.lower() not in LOG_LEVELS:
        raise GreenlessError(f"--log-level {level!r}: choose from {', '.join(LOG_LEVELS)}")
    return level.lower()


def check_listen(host: str, port: int) -> None:
    """Raise ``GreenlessError`` unless this process can listen on ``host``:``port`` now: a port from 1 to
    65535, a host that resolves to an address of this machine, and a port nobody else listens on."""
    if not 1 <= port <= 65535:
        raise GreenlessError(f"--port must be between 1 and 65535, not {port}")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
    except (socket.gaierror, UnicodeError, ValueError) as exc:  # not an address, no name that resolves, a NUL byte
        reason = getattr(exc, "strerror", None) or str(exc)
        raise GreenlessError(f"--host {host}: not an address, nor a name this machine can resolve ({reason})") from None
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise GreenlessError(f"--port {port}: already in use on {host}; stop the other server or choose another "
                                 f"port") from None
        if exc.errno == errno.EADDRNOTAVAIL:
            raise GreenlessError(f"--host {host}: not an address of this machine (0.0.0.0 listens on all of "
                                 f"them)") from None
        if exc.errno == errno.EACCES:
            raise GreenlessError(f"--port {port}: permission denied (ports below 1024 need privileges); choose a "
                                 f"port above 1023") from None
        raise GreenlessError(f"cannot listen on {host}:{port} ({exc.strerror or exc})") from None
