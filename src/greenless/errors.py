"""One exception type for every user-facing failure, so entry points can print one clear line."""

from __future__ import annotations


class GreenlessError(Exception):
    """A problem the user can fix (bad file, bad option); its message is shown as-is, without a traceback."""
