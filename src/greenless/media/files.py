"""File permissions for outputs: what a normally created file or folder gets under the current umask.

Outputs are written to private temporary files (``tempfile`` creates them 0600 / 0700) and moved into
place, so they must be given the permissions a plain ``open()`` or ``mkdir`` would have given them. The
umask can only be read by setting it (``os.umask``), and it is process-wide: setting it to 0 even for an
instant lets another thread (a server's workers, the video encoder) create world-writable files. So
it is learned without touching it, from a probe file the kernel creates under the current umask.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile

from greenless.errors import GreenlessError

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


def real_path(path: str | os.PathLike[str]) -> str:
    """``path`` with symlinks and ``..`` resolved, as far as they resolve: a symlink loop is returned as it
    stands rather than raised (``Path.resolve`` raises ``RuntimeError`` on one), so identity checks on
    user paths never end in a traceback and the loop is reported where the file is read."""
    return os.path.realpath(path)


def os_error_reason(exc: OSError) -> str:
    """A few words for why a file cannot be read: "file not found", a symlink loop, or the system's reason."""
    if exc.errno == errno.ELOOP:
        return "cannot read (a symlink loop: too many levels of symbolic links)"
    if exc.errno in (errno.ENOENT, errno.ENOTDIR):
        return "file not found"
    return f"cannot read ({exc.strerror or exc})"


def missing_reason(path: str | os.PathLike[str]) -> str:
    """Why ``path``, which does not exist as far as ``Path.exists`` can tell, cannot be read, in a few words."""
    try:
        os.stat(path)
    except OSError as exc:
        return os_error_reason(exc)
    return "file not found"


def check_writable_folder(folder: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
    """One ``GreenlessError`` naming ``target`` unless files can be written in ``folder`` (made if missing).

    Checked before any work, so a run whose output cannot land (a read-only folder or file system, a file
    where a folder must go, a place no folder can be made) stops with one line instead of failing every
    result after the model has run. It is tried, not guessed from permission bits (root, ACLs and read-only
    mounts make those lie): the missing folders are made and one unnamed temporary file is opened there, then
    the folders made are removed again, so nothing is left behind.
    """
    wanted = os.path.abspath(folder)
    existing = wanted
    while not os.path.lexists(existing) and os.path.dirname(existing) != existing:
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise GreenlessError(f"{target}: cannot write output ({existing} is a file, not a folder)")
    made: list[str] = []
    missing = os.path.relpath(wanted, existing).split(os.sep) if wanted != existing else []
    path = existing
    try:
        for part in missing:
            path = os.path.join(path, part)
            os.mkdir(path)
            made.append(path)
        try:
            with tempfile.TemporaryFile(dir=wanted):
                pass
        except OSError as exc:
            raise GreenlessError(f"{target}: cannot write output (folder {wanted} is not writable: "
                                 f"{exc.strerror or exc})") from None
    except OSError as exc:
        raise GreenlessError(f"{target}: cannot write output (cannot make the folder {path}: "
                             f"{exc.strerror or exc})") from None
    finally:
        for path in reversed(made):
            try:
                os.rmdir(path)
            except OSError:
                pass
