"""Checks an exported model against the PyTorch model on real images, and reads calibration data for int8.

A runner is any ``f(batch NCHW float32 in [-1, 1]) -> N x 1 x H x W matte``; both the reference and the
candidate run inside the recipe ``Matter`` runs the weights with (``greenless.pipeline.recipe``: reference size,
preprocessing, the hint channel with its guide, bounding, upsampling), so the figures describe the mattes
users will get from the export.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from greenless.errors import GreenlessError
from greenless.media.images import IMAGE_SUFFIXES, load_rgb, read_alpha
from greenless.media.labelled import load_labelled
from greenless.media.video import VIDEO_EXTENSIONS as VIDEO_SUFFIXES
from greenless.pipeline.recipe import Recipe

Runner = Callable[[np.ndarray], np.ndarray]


def load_check_set(folder: Path, limit: int | None = None) -> tuple[list[np.ndarray], list[np.ndarray], list[str]]:
    """Images and mattes from a labelled folder in any layout ``greenless eval`` reads (PPM-100's ``image/`` +
    ``alpha/``, P3M, AIM-500: ``greenless.media.labelled``), paired by stem, at most ``limit`` of them."""
    samples = load_labelled(folder).samples
    pairs = [(s.image, s.alpha) for s in (samples[:limit] if limit else samples)]
    images, mattes = [], []
    for image_path, alpha_path in pairs:
        rgb, alpha = load_rgb(image_path), read_alpha(alpha_path).astype(np.float32)
        if alpha.shape != rgb.shape[:2]:
            raise GreenlessError(f"{alpha_path}: size {alpha.shape[::-1]} differs from its image {rgb.shape[1::-1]}")
        images.append(rgb)
        mattes.append(alpha)
    return images, mattes, [p.stem for p, _ in pairs]


def matte_with(runner: Runner, rgb: np.ndarray, recipe: Recipe) -> np.ndarray:
    """Full-size matte of ``rgb`` through ``runner`` by ``recipe``: what ``Matter.matte`` gives when its engine
    is ``runner`` and its recipe is ``recipe``."""
    return recipe.matte(runner, [rgb])[0]


@dataclass
class ExportCheck:
    """How an exported variant compares with the PyTorch model on the check images."""

    variant: str
    images: int
    ref_size: int
    matte_mean_abs_diff: float  # mean |torch matte - export matte|, over all pixels of all images
    matte_max_abs_diff: float
    torch_mse: float
    torch_mad: float
    export_mse: float
    export_mad: float

    @property
    def mad_change(self) -> float:
        """Relative change of MAD against ground truth (+0.05 = 5% worse)."""
        if self.torch_mad == 0.0:
            return 0.0 if self.export_mad == 0.0 else float("inf")
        return self.export_mad / self.torch_mad - 1.0

    def to_dict(self) -> dict[str, float | int | str]:
        """Figures for the exported model's card."""
        return {**asdict(self), "mad_change": self.mad_change}

    def summary(self) -> str:
        """One line with every figure."""
        return (f"{self.variant}: {self.images} images at ref size {self.ref_size}: matte vs torch mean |diff| "
                f"{self.matte_mean_abs_diff:.2e} (max {self.matte_max_abs_diff:.2e}); MSE {self.torch_mse:.5f} -> "
                f"{self.export_mse:.5f}, MAD {self.torch_mad:.5f} -> {self.export_mad:.5f} ({self.mad_change * 100:+.2f}%)")


def compare(variant: str, reference: Runner, candidate: Runner, images: list[np.ndarray], alphas: list[np.ndarray],
            recipe: Recipe) -> ExportCheck:
    """Run both models over the check images by ``recipe`` and collect the agreement and quality figures."""
    diffs, maxdiff, t_se, t_ae, e_se, e_ae, pixels = 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0
    for rgb, gt in zip(images, alphas, strict=True):
        ref = matte_with(reference, rgb, recipe).astype(np.float64)
        out = matte_with(candidate, rgb, recipe).astype(np.float64)
        diff = np.abs(ref - out)
        diffs += float(diff.sum())
        maxdiff = max(maxdiff, float(diff.max()))
        t_se += float(((ref - gt) ** 2).sum())
        t_ae += float(np.abs(ref - gt).sum())
        e_se += float(((out - gt) ** 2).sum())
        e_ae += float(np.abs(out - gt).sum())
        pixels += gt.size
    return ExportCheck(variant, len(images), recipe.ref_size, diffs / pixels, maxdiff, t_se / pixels, t_ae / pixels,
                       e_se / pixels, e_ae / pixels)


def enforce(check: ExportCheck, max_degradation: float, max_mean_diff: float | None = None) -> None:
    """Raise ``GreenlessError`` when the variant's MAD is worse than allowed, or it strays from the torch model."""
    if check.export_mad > check.torch_mad * (1.0 + max_degradation):
        raise GreenlessError(
            f"{check.variant} export refused: MAD on the check images goes from {check.torch_mad:.5f} to "
            f"{check.export_mad:.5f} ({check.mad_change * 100:+.2f}%), more than the allowed {max_degradation * 100:g}%")
    if max_mean_diff is not None and check.matte_mean_abs_diff > max_mean_diff:
        raise GreenlessError(
            f"{check.variant} export refused: its mattes differ from the torch model's by {check.matte_mean_abs_diff:.2e} "
            f"on average (allowed {max_mean_diff:.0e}); the export does not reproduce the model")


def video_frames(path: Path, count: int) -> Iterator[np.ndarray]:
    """``count`` evenly spaced frames of a video as RGB (OpenCV decoding)."""
    cap = cv2.VideoCapture(str(path))
    try:
        total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or count
        for index in np.linspace(0, max(total - 1, 0), count).astype(int):
            cap.set(cv2.CAP_PROP_POS_FRAMES, int(index))
            ok, bgr = cap.read()
            if ok:
                yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    finally:
        cap.release()


def calibration_images(sources: list[Path], max_samples: int = 24, frames_per_video: int = 2) -> list[np.ndarray]:
    """Real images for int8 calibration from files or folders (searched recursively) of photos and videos.

    Samples are spread over the sources in turn so every folder contributes; videos give a few frames each.
    """
    per_source: list[list[Path]] = []
    for source in sources:
        if source.is_file():
            files = [source]
        elif source.is_dir():
            files = sorted(p for p in source.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES + VIDEO_SUFFIXES)
        else:
            raise GreenlessError(f"{source}: calibration data not found")
        per_source.append(files)
    ordered = [files[i] for i in range(max((len(f) for f in per_source), default=0)) for files in per_source if i < len(files)]
    images: list[np.ndarray] = []
    for path in ordered:
        if len(images) >= max_samples:
            break
        if path.suffix.lower() in VIDEO_SUFFIXES:
            images.extend(video_frames(path, frames_per_video))
        else:
            images.append(load_rgb(path))
    if not images:
        raise GreenlessError(f"no calibration images found in {', '.join(map(str, sources))}")
    return images[:max_samples]
