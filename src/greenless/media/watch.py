"""Watching a folder for images by polling: new or changed files, handed out once they are complete.

Polling (``os.scandir`` every interval) needs no dependency and works on every file system, network shares
included, where change notifications often do not. A file is complete when its size and modification time
are the same at two polls in a row and it is not empty, so a photo still being copied or downloaded is not
read half-written; one that still fails to decode is retried when it changes again.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path

Signature = tuple[int, int]  # (size, modification time in ns)


class FolderWatch:
    """The images of one folder (not its subfolders) that are new or changed since they were last handed out.

    ``skip(path)`` leaves a file out (the watcher's own results, say); hidden files (``.name``: the atomic
    writers' ``.NAME.*.part`` files among them) are always left out.
    """

    def __init__(self, folder: Path, suffixes: Iterable[str], skip: Callable[[Path], bool] = lambda p: False) -> None:
        self.folder = Path(folder)
        self.suffixes = {s.lower() for s in suffixes}
        self.skip = skip
        self._seen: dict[str, Signature] = {}  # name -> signature at the previous poll
        self._handled: dict[str, Signature] = {}  # name -> signature when it was handed out

    def _scan(self) -> dict[str, Signature]:
        found: dict[str, Signature] = {}
        with os.scandir(self.folder) as entries:
            for entry in entries:
                if entry.name.startswith(".") or Path(entry.name).suffix.lower() not in self.suffixes:
                    continue
                try:
                    if not entry.is_file():
                        continue
                    st = entry.stat()
                except OSError:  # gone between listing and stat
                    continue
                found[entry.name] = (st.st_size, st.st_mtime_ns)
        return found

    def poll(self) -> list[Path]:
        """Files complete since the last poll (same size and time as then, not empty) and not yet handed out in
        this state, sorted by name; each is handed out once until it changes again."""
        now = self._scan()
        ready = []
        for name, sig in sorted(now.items()):
            if sig[0] > 0 and self._seen.get(name) == sig and self._handled.get(name) != sig:
                path = self.folder / name
                self._handled[name] = sig
                if not self.skip(path):
                    ready.append(path)
        self._seen = now
        for name in set(self._handled) - set(now):  # deleted: if it comes back it is new
            del self._handled[name]
        return ready
