"""The reference person-segmentation model (MediaPipe selfie segmentation) for side-by-side figures.

It is the same model greenless ships as its semantic guide (``greenless.pipeline.guide``); here it is
scored on its own. ``mode='squash'`` is how the reference is scored in the README's first comparison
(the whole image squashed to 256x256, mask resized back); ``mode='pad'`` letterboxes to keep the
aspect ratio, which is better and is what the guide and the pseudo-labels use.
"""

from __future__ import annotations

from greenless.pipeline.guide import SIZE, SelfieSegmenter

ReferenceSegmenter = SelfieSegmenter

__all__ = ["SIZE", "ReferenceSegmenter"]
