"""Live matting: frames as they come -> the stream (``pipeline.stream.open_stream(live=True)``) -> a composite on
the background -> every sink (a recording, a virtual camera, a preview window), until the source ends, a sink
says stop, ``max_frames``, or Ctrl-C."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

#: A sink takes the composite and the rate so far; False stops the run (the user closed the window).
Sink = Callable[[np.ndarray, float], "bool | None"]


def run_live(setup: Any, frames: Iterable[np.ndarray], background: Any, sinks: list[Sink],
             max_frames: int | None = None, tick: Callable[[], float] = lambda: 0.0) -> int:
    """Matte and composite each frame of ``frames`` one at a time and hand it to every sink; returns the frames
    sent. ``tick`` is called once per frame sent and gives the rate shown (``cli.webcam.FpsMeter``). Ctrl-C ends
    the run like the end of the source, so the caller finalises a recording."""
    sent = 0

    def emit(rgb: np.ndarray, alpha: np.ndarray) -> bool:
        nonlocal sent
        out = setup.render("composite", rgb, alpha, background)
        fps = tick()
        sent += 1
        return all([sink(out, fps) is not False for sink in sinks])

    count = 0
    try:
        for rgb in frames:
            if max_frames is not None and count >= max_frames:
                break
            count += 1
            if not all(emit(f, a) for a, f in setup.stream.push([rgb])):  # stops at a closed window
                return sent
        for a, f in setup.stream.flush():
            emit(f, a)
    except KeyboardInterrupt:
        pass  # a live run is stopped this way: what was recorded is kept
    return sent
