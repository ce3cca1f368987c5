"""File permissions for outputs: what a normally created file or folder gets under the current umask.

Outputs are written to private temporary files (``tempfile`` creates them 0600 / 0700) and moved into
place, so they must be given the permissions a plain ``open()`` or ``mkdir`` would have given them. The
umask can only be read by setting it (``os.umask``), and it is process-wide: setting it to 0 even for an
instant lets another thread (a server's workers, the video encoder) create world-writable files. So
it is learned without touching it, from a probe file the kernel creates under the current umask.
"""

from __future__ import annotations

import os
import shutil
import tempfile

_PROBE = "umask-probe"
_FALLBACK_UMASK = 0o022  # the usual default, when no temporary folder can be written


def current_umask() -> int:
    """The process's umask, read from a probe file created with mode 0o777 (the process umask is never changed)."""
    try:
        folder = tempfile.mkdtemp(prefix=".greenless-umask-")
    except OSError:
        return _FALLBACK_UMASK
    try:
        fd = os.open(os.path.join(folder, _PROBE), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o777)
        try:
            mode = os.fstat(fd).st_mode & 0o777
        finally:
            os.close(fd)
        return 0o777 & ~mode
    except OSError:
        return _FALLBACK_UMASK
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def default_mode(directory: bool = False) -> int:
    """Permissions a new folder (0o777) or file (0o666) gets under the current umask, e.g. 0o644 under 022."""
    return (0o777 if directory else 0o666) & ~current_umask()
