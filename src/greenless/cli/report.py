"""How commands report on stderr: one ``greenless: error:`` line per failed item, and a Rich progress bar that
shows on a terminal only (a log or a pipe gets the plain lines)."""

from __future__ import annotations

import sys
from typing import Any


def error_line(console: Any, message: str) -> None:
    """One ``greenless: error: message`` line on stderr, above the progress bar when there is one."""
    line = f"greenless: error: {message}"
    if console.is_terminal:
        console.print(line, markup=False, highlight=False, soft_wrap=True)
    else:
        print(line, file=sys.stderr, flush=True)


def files_progress(console: Any, transient: bool = False) -> Any:
    """A Rich progress bar over files: done of total, files per second, time left (on a terminal only)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeRemainingColumn
    from rich.text import Text

    class RateColumn(ProgressColumn):
        """Files per second (the task's running speed)."""

        def render(self, task: Any) -> Text:
            speed = task.finished_speed or task.speed
            return Text(f"{speed:.2f} files/s" if speed else "- files/s", style="progress.data.speed")

    return Progress(TextColumn("matting"), BarColumn(), MofNCompleteColumn(), RateColumn(), TimeRemainingColumn(),
                    console=console, disable=not console.is_terminal, transient=transient)
