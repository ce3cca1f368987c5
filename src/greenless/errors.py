"""One exception type for every user-facing failure, so entry points can print one clear line."""

from __future__ import annotations


class GreenlessError(Exception):
    """A problem the user can fix (bad file, bad option); its message is shown as-is, without a traceback."""


def install_hint(extra: str) -> str:
    """The pip command that adds an optional extra to *this* installation, as it can be pasted.

    greenless is installed from a clone (it is not on PyPI), so ``pip install "greenless[video]"`` fails;
    the command names the clone's folder when the package runs from one (an editable install), else it
    asks for that folder.
    """
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    target = str(root) if (root / "pyproject.toml").is_file() else "/path/to/your/greenless/clone"
    return f"pip install -e '{target}[{extra}]'"


def first_line(exc: BaseException, limit: int = 200) -> str:
    """The first line of ``exc``'s message (at most ``limit`` characters), or its type's name when the message
    is empty (an ``EOFError()`` from an empty file): the reason shown in brackets in our one-line errors."""
    text = str(exc).strip()
    return text.splitlines()[0][:limit] if text else type(exc).__name__
