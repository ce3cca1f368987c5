"""Frames in order, mattes out: the one place that holds frame-to-frame state (``Matter.stream()``).

``greenless video``, ``greenless webcam`` and anything else that mattes a sequence go through
``MatteStream``, so the temporal policy lives here alone: which hint the 4th input channel gets (the guide
of every frame, or the previous frame's matte fed back) comes from the matter's recipe (the registry's
default for the weights and their hint) or the caller's ``temporal``; OFD (one-frame delay, removing one-frame alpha spikes) runs on top unless turned off.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from greenless.errors import GreenlessError

if TYPE_CHECKING:
    from greenless.pipeline.recipe import Recipe

TEMPORAL_MODES = ("prev-alpha", "ofd", "none")
DEFAULT_OFD_TOL = 0.1


def ofd_step(prev: np.ndarray, cur: np.ndarray, nxt: np.ndarray, tol: float = DEFAULT_OFD_TOL) -> np.ndarray:
    """OFD on one frame: where prev and next agree within ``tol`` and cur differs from both by more, use their mean."""
    spike = (np.abs(prev - nxt) <= tol) & (np.abs(cur - prev) > tol) & (np.abs(cur - nxt) > tol)
    if not spike.any():
        return cur
    return np.where(spike, (prev + nxt) * 0.5, cur).astype(cur.dtype, copy=False)


class OneFrameDelay:
    """Streaming OFD: push alphas in order, get them back one frame later with single-frame spikes removed.

    Each alpha travels with an opaque ``item`` (the frame it belongs to). The first and last frames
    pass unchanged since they lack a neighbour; ``flush()`` returns what is still held at the end.
    """

    def __init__(self, tol: float = DEFAULT_OFD_TOL) -> None:
        self.tol = tol
        self._prev: np.ndarray | None = None  # alpha already emitted, as emitted originally (raw)
        self._held: tuple[np.ndarray, Any] | None = None

    def push(self, alpha: np.ndarray, item: Any) -> list[tuple[np.ndarray, Any]]:
        """Add frame t+1; returns frame t (filtered) once its successor is known."""
        out: list[tuple[np.ndarray, Any]] = []
        if self._held is not None:
            cur, cur_item = self._held
            if self._prev is None or self._prev.shape != cur.shape or alpha.shape != cur.shape:
                out.append((cur, cur_item))
            else:
                out.append((ofd_step(self._prev, cur, alpha, self.tol), cur_item))
            self._prev = cur
        self._held = (alpha, item)
        return out

    def flush(self) -> list[tuple[np.ndarray, Any]]:
        """The last held frame, unchanged."""
        held, self._held = self._held, None
        return [held] if held is not None else []


def apply_ofd(alphas: Iterable[np.ndarray], tol: float = DEFAULT_OFD_TOL) -> list[np.ndarray]:
    """OFD over a whole sequence (for evaluation and benchmarks); same result as the streaming filter."""
    ofd = OneFrameDelay(tol)
    out = [a for alpha in alphas for a, _ in ofd.push(alpha, None)]
    return out + [a for a, _ in ofd.flush()]


@dataclass(frozen=True)
class TemporalPolicy:
    """What a stream does between frames: feed the previous matte back (``feedback``), and/or OFD."""

    feedback: bool
    ofd: bool
    tol: float = DEFAULT_OFD_TOL

    @property
    def label(self) -> str:
        """``prev-alpha + ofd``, ``prev-alpha``, ``ofd`` or ``none``, as reports print it."""
        parts = (["prev-alpha"] if self.feedback else []) + (["ofd"] if self.ofd else [])
        return " + ".join(parts) or "none"


def resolve_temporal(temporal: str | None, recipe: Recipe, ofd: bool = True, tol: float = DEFAULT_OFD_TOL,
                     weights: Any = None) -> TemporalPolicy:
    """The policy for a stream over ``recipe`` (``greenless.pipeline.recipe.Recipe``): ``temporal``
    (``prev-alpha``, ``ofd``, ``none``; None: the recipe's, which is the registry's default for the weights and
    their hint), with OFD on top of ``prev-alpha`` and ``ofd`` unless ``ofd`` is False.

    ``prev-alpha`` needs 4-channel weights; ``none`` means neither feedback nor OFD.
    """
    if temporal is None:
        temporal = recipe.temporal
    if temporal not in TEMPORAL_MODES:
        raise GreenlessError(f"unknown --temporal {temporal!r}; choose one of {', '.join(TEMPORAL_MODES)}")
    if temporal == "prev-alpha" and recipe.channels != 4:
        raise GreenlessError(f"--temporal prev-alpha needs 4-channel (previous-alpha) weights (--model modnet, the video "
                             f"default, or a 4-channel --weights file); {weights or 'the default weights'} take "
                             f"{recipe.channels} input channels")
    return TemporalPolicy(feedback=temporal == "prev-alpha", ofd=ofd and temporal != "none", tol=tol)


class MatteStream:
    """Mattes of a sequence of frames, in order, with the temporal policy applied (``Matter.stream()``).

    ``push(frames, items)`` takes any number of frames (same-size frames share one engine call, so callers
    may batch as their hardware likes) and returns the ``(alpha, item)`` pairs that are ready, in order; with
    OFD the last frame is held back until its successor arrives, and ``flush()`` returns it at the end. With
    feedback each frame needs its predecessor's matte, so a pushed batch runs one frame per engine call.
    Not thread-safe: one stream per sequence, fed from one thread.
    """

    def __init__(self, matter: Any, temporal: str | None = None, ofd: bool = True,
                 ofd_tol: float = DEFAULT_OFD_TOL) -> None:
        self.matter = matter
        self.policy = resolve_temporal(temporal, matter.recipe, ofd, ofd_tol, getattr(matter, "weights", None))
        self.reset()

    @property
    def label(self) -> str:
        """The policy as reports print it (``ofd``, ``prev-alpha + ofd``, ...)."""
        return self.policy.label

    @property
    def max_batch(self) -> int | None:
        """Frames one engine call can take: 1 with feedback, else no limit (None)."""
        return 1 if self.policy.feedback else None

    def reset(self) -> None:
        """Forget the previous frames: the next push starts a new sequence."""
        self._prev: np.ndarray | None = None
        self._ofd = OneFrameDelay(self.policy.tol) if self.policy.ofd else None

    def push(self, frames: Sequence[Any], items: Sequence[Any] | None = None) -> list[tuple[np.ndarray, Any]]:
        """Matte the next ``frames`` (images ``Matter.matte`` takes); returns the ready ``(alpha, item)``
        pairs in order (``item`` defaults to the frame itself)."""
        items = list(frames) if items is None else list(items)
        if len(items) != len(frames):
            raise ValueError("push needs one item per frame")
        if not frames:
            return []
        if self.policy.feedback:
            alphas = []
            for frame in frames:
                self._prev = self.matter.matte_batch([frame], [self._prev])[0]
                alphas.append(self._prev)
        else:
            alphas = self.matter.matte_batch(list(frames))
        if self._ofd is None:
            return list(zip(alphas, items, strict=True))
        return [ready for alpha, item in zip(alphas, items, strict=True) for ready in self._ofd.push(alpha, item)]

    def flush(self) -> list[tuple[np.ndarray, Any]]:
        """What is still held at the end of the sequence (the last frame under OFD), then a fresh start."""
        held = self._ofd.flush() if self._ofd is not None else []
        self.reset()
        return held

    def run(self, frames: Iterable[Any], batch: int = 1) -> Iterator[tuple[np.ndarray, Any]]:
        """Every frame's ``(alpha, frame)`` in order, pushing ``batch`` frames at a time, flushed at the end."""
        chunk: list[Any] = []
        for frame in frames:
            chunk.append(frame)
            if len(chunk) >= batch:
                yield from self.push(chunk)
                chunk = []
        if chunk:
            yield from self.push(chunk)
        yield from self.flush()

