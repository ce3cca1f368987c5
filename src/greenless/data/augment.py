"""Augmentations for composited training samples: geometry, colour, degradations and synthetic lighting.

The lighting simulation follows the deployment notes behind MODNet's webcam model: with some
probability a soft point light or a light streak is added to the image (not the alpha), so the
network meets back-light and hard light during training.
"""

from __future__ import annotations

import cv2
import numpy as np


def random_crop_scale(rng: np.random.Generator, rgb_layers: list[np.ndarray], size: int,
                      scale_range: tuple[float, float] = (0.6, 1.3), edge_p: float = 0.0) -> list[np.ndarray]:
    """Rescale every layer by one random factor (short side ~ size*scale), then take one random size x size crop.

    With probability ``edge_p`` the crop is placed around the transition band instead: the last layer is the
    alpha, and the crop holds a random one of its soft pixels (0.02 < alpha < 0.98) at a random place, so the
    network sees hair and edges more often than flat body and background (issue 17's edge sampling)."""
    h, w = rgb_layers[0].shape[:2]
    target_short = size * rng.uniform(*scale_range)
    scale = max(target_short / min(h, w), size / min(h, w))
    nh, nw = max(size, int(round(h * scale))), max(size, int(round(w * scale)))
    y = int(rng.integers(0, nh - size + 1))
    x = int(rng.integers(0, nw - size + 1))
    if edge_p and rng.random() < edge_p:
        soft_y, soft_x = np.nonzero((rgb_layers[-1] > 0.02) & (rgb_layers[-1] < 0.98))
        if soft_y.size:
            pick = int(rng.integers(soft_y.size))
            cy, cx = int(soft_y[pick] * nh / h), int(soft_x[pick] * nw / w)
            y = int(np.clip(cy - rng.integers(size), 0, nh - size))
            x = int(np.clip(cx - rng.integers(size), 0, nw - size))
    out = []
    for layer in rgb_layers:
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        resized = cv2.resize(layer, (nw, nh), interpolation=interp)
        out.append(resized[y:y + size, x:x + size])
    return out


def colour_jitter(rng: np.random.Generator, img: np.ndarray, strength: float = 0.25) -> np.ndarray:
    """Brightness, contrast, saturation and hue shifts on a float RGB image in [0, 1]."""
    img = img * rng.uniform(1 - strength, 1 + strength)
    mean = img.mean()
    img = (img - mean) * rng.uniform(1 - strength, 1 + strength) + mean
    grey = img.mean(axis=2, keepdims=True)
    img = (img - grey) * rng.uniform(1 - strength, 1 + strength) + grey
    if rng.random() < 0.3:
        hsv = cv2.cvtColor(np.clip(img, 0, 1).astype(np.float32), cv2.COLOR_RGB2HSV)
        hsv[..., 0] = (hsv[..., 0] + rng.uniform(-12, 12)) % 360
        img = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    return np.clip(img, 0, 1)


def maybe_greyscale(rng: np.random.Generator, img: np.ndarray, p: float = 0.15) -> np.ndarray:
    """With probability ``p`` drop the colour (black-and-white portraits are common and look very different)."""
    if rng.random() >= p:
        return img
    grey = img @ np.array([0.299, 0.587, 0.114], dtype=img.dtype)
    return np.repeat(grey[..., None], 3, axis=2)


def _head_ellipse(alpha: np.ndarray) -> tuple[float, float, float, float] | None:
    """(cx, cy, half-width, half-height) of the face of the person in ``alpha``, or None when there is none.

    No face detector: the head is the top of the silhouette. A head (hair included) is about 1.25 times
    as tall as it is wide, so going down from the top row of the foreground the head ends at the first
    depth that reaches 1.25 times the widest row above it (the neck is narrower, and stopping there
    keeps the shoulders out). The face is the lower part of that head, narrower than the hair.
    """
    solid = alpha > 0.5
    if solid.mean() < 0.002:
        return None
    rows = np.flatnonzero(solid.any(axis=1))
    top, bottom = int(rows[0]), int(rows[-1])
    band = solid[top:bottom + 1]
    has = band.any(axis=1)
    left = np.where(has, band.argmax(axis=1), 0)
    right = np.where(has, band.shape[1] - 1 - band[:, ::-1].argmax(axis=1), -1)
    widths = (right - left + 1).astype(np.float32)
    widest = np.maximum.accumulate(widths)
    depth = np.arange(1, len(widths) + 1, dtype=np.float32)
    done = np.flatnonzero(depth >= 1.25 * widest)
    head_h = int(done[0]) + 1 if len(done) else len(widths)
    head_w = float(widest[head_h - 1])
    if head_h < 4 or head_w < 3:
        return None
    lower = slice(head_h // 2, head_h)
    cx = float(np.median((left[lower] + right[lower]) / 2.0))
    return cx, top + 0.58 * head_h, 0.33 * head_w, 0.36 * head_h


def face_blur(rng: np.random.Generator, image: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Privacy blur as in P3M-10k: a strongly blurred, softly blended ellipse over the person's face.

    Public portrait sets are released with blurred faces (P3M-10k); a network that never saw one cuts
    blurred faces out badly. Without any face model, the face is placed from the alpha alone (the top
    of the silhouette, see ``_head_ellipse``), with random jitter of position and size and a random blur
    strength. ``image`` is float RGB in [0, 1] (HxWx3), ``alpha`` float in [0, 1] (HxW); returns a new
    float32 image (the alpha is unchanged: blurring a face does not move the person's outline). Without
    a person (empty alpha) the image comes back unchanged. Best applied to a whole foreground before it
    is cropped, so the top of the head is in the picture.
    """
    out = image.astype(np.float32, copy=True)
    head = _head_ellipse(alpha)
    if head is None:
        return out
    cx, cy, ax, ay = head
    scale = rng.uniform(0.85, 1.2)
    cx += rng.uniform(-0.08, 0.08) * ax
    cy += rng.uniform(-0.08, 0.08) * ay
    ax, ay = max(2.0, ax * scale), max(2.0, ay * scale)
    mask: np.ndarray = np.zeros(alpha.shape, np.float32)
    cv2.ellipse(mask, (int(round(cx)), int(round(cy))), (int(round(ax)), int(round(ay))), 0.0, 0, 360, 1.0, -1)
    mask = cv2.GaussianBlur(mask, (0, 0), max(1.0, 0.15 * ax))
    mask *= np.clip(alpha.astype(np.float32) * 2.0, 0.0, 1.0)  # keep the blur on the person
    mask[mask < 1e-3] = 0.0  # the Gaussian's far tail: leave the rest of the picture exactly as it was
    blurred = cv2.GaussianBlur(out, (0, 0), max(1.5, rng.uniform(0.12, 0.25) * ax))
    m = mask[..., None]
    return np.clip(out * (1.0 - m) + blurred * m, 0.0, 1.0)


def harmonise(rng: np.random.Generator, fg: np.ndarray, bg: np.ndarray, alpha: np.ndarray,
              max_strength: float = 0.6) -> np.ndarray:
    """Colour and lighting harmonisation: move the foreground's Lab statistics part way to the background's.

    Composites whose person was lit for another scene teach the network a shortcut (a colour or
    brightness step at the outline) that real photos do not have. Per Lab channel, the foreground's mean
    (over ``alpha`` > 0.5) moves a random share ``s`` of the way to the background's mean and its spread
    is scaled by (bg std / fg std) ** s; lightness and colour get separate random shares in
    [0, ``max_strength``). float RGB in [0, 1] in and out (the new foreground, float32); ``alpha`` is
    only read. Use the returned foreground both for the composite and as the foreground target.
    """
    weights = alpha > 0.5
    if weights.sum() < 16:
        return fg.astype(np.float32, copy=True)
    fg_lab = cv2.cvtColor(np.clip(fg, 0, 1).astype(np.float32), cv2.COLOR_RGB2Lab)
    bg_lab = cv2.cvtColor(np.clip(bg, 0, 1).astype(np.float32), cv2.COLOR_RGB2Lab)
    s_light, s_colour = rng.uniform(0.0, max_strength, 2)
    strength = np.array([s_light, s_colour, s_colour], np.float32)  # a and b share one: the cast moves straight
    f_mean, f_std = fg_lab[weights].mean(axis=0), fg_lab[weights].std(axis=0) + 1e-3
    b_mean, b_std = bg_lab.reshape(-1, 3).mean(axis=0), bg_lab.reshape(-1, 3).std(axis=0) + 1e-3
    ratio = np.clip(b_std / f_std, 0.5, 2.0) ** strength
    lab = (fg_lab - f_mean) * ratio + f_mean + strength * (b_mean - f_mean)
    lab[..., 0] = np.clip(lab[..., 0], 0.0, 100.0)
    return np.clip(cv2.cvtColor(lab.astype(np.float32), cv2.COLOR_Lab2RGB), 0.0, 1.0)


def degrade(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    """Blur, sensor noise and JPEG artefacts, each with some probability (float RGB in [0, 1])."""
    if rng.random() < 0.2:
        k = int(rng.choice([3, 5]))
        img = cv2.GaussianBlur(img, (k, k), 0)
    if rng.random() < 0.3:
        img = img + rng.normal(0, rng.uniform(0.005, 0.03), img.shape).astype(np.float32)
    if rng.random() < 0.3:
        q = int(rng.integers(40, 90))
        ok, buf = cv2.imencode(".jpg", (np.clip(img, 0, 1) * 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, q])
        decoded = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED) if ok else None
        if decoded is not None:
            img = decoded.astype(np.float32) / 255.0
    return np.clip(img, 0, 1)


def add_lighting(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    """Add a synthetic point light (radial falloff) or line light (a soft streak) of random colour."""
    h, w = img.shape[:2]
    colour = rng.uniform(0.7, 1.0, 3).astype(np.float32)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if rng.random() < 0.5:
        cy, cx = rng.uniform(-0.2, 1.2) * h, rng.uniform(-0.2, 1.2) * w
        radius = rng.uniform(0.2, 0.8) * max(h, w)
        light = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * radius ** 2))
    else:
        angle = rng.uniform(0, np.pi)
        offset = rng.uniform(0.2, 0.8) * (h * abs(np.sin(angle)) + w * abs(np.cos(angle)))
        dist = xx * np.sin(angle) - yy * np.cos(angle) + h * np.cos(angle) * 0.5
        width = rng.uniform(0.05, 0.25) * max(h, w)
        light = np.exp(-((dist - offset + h * 0.25) ** 2) / (2 * width ** 2))
    gain = rng.uniform(0.3, 0.9)
    return np.clip(img + gain * light[..., None] * colour, 0, 1)


def _random_blobs(rng: np.random.Generator, shape: tuple[int, int], count: int, max_frac: float) -> np.ndarray:
    """A soft mask of ``count`` random filled ellipses, each up to ``max_frac`` of the short side across."""
    h, w = shape
    mask = np.zeros(shape, np.float32)
    for _ in range(count):
        centre = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        axes = tuple(int(max(2, rng.uniform(0.03, max_frac) * min(h, w))) for _ in range(2))
        cv2.ellipse(mask, centre, axes, float(rng.uniform(0, 180)), 0, 360, 1.0, -1)
    return cv2.GaussianBlur(mask, (0, 0), max(1.0, 0.01 * min(h, w)))


def corrupt_guide(rng: np.random.Generator, guide: np.ndarray, blank_p: float = 0.1) -> np.ndarray:
    """A guide mask damaged the ways a segmentation model's mask goes wrong, so a guided network learns to
    refine the guide and overrule it where the image disagrees, not to copy it.

    Each with some probability: missing (blank), shifted/rotated/scaled, eroded or dilated, blotches of
    false person (things taken in), holes (parts of the person left out), coarse (low resolution) or hard
    (thresholded). The guide the trainer starts from is the segmentation model's own output on the
    composite, which already carries its natural mistakes (statues, lit buildings, other people's shapes).
    """
    if rng.random() < blank_p:
        return np.zeros_like(guide)
    h, w = guide.shape
    out: np.ndarray = guide.astype(np.float32, copy=True)
    if rng.random() < 0.35:
        matrix: np.ndarray = cv2.getRotationMatrix2D((w / 2, h / 2), rng.uniform(-6, 6), rng.uniform(0.93, 1.07))
        matrix[:, 2] += rng.uniform(-0.05, 0.05, 2) * (w, h)
        out = cv2.warpAffine(out, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    if rng.random() < 0.35:
        k = int(rng.integers(1, max(2, min(h, w) // 24)))
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * k + 1, 2 * k + 1))
        out = cv2.dilate(out, kernel) if rng.random() < 0.5 else cv2.erode(out, kernel)
    if rng.random() < 0.2:
        out = np.maximum(out, _random_blobs(rng, (h, w), int(rng.integers(1, 4)), 0.3) * rng.uniform(0.5, 1.0))
    if rng.random() < 0.1:  # rarer than blotches: the segmenter seldom leaves holes in a person
        out = out * (1.0 - _random_blobs(rng, (h, w), int(rng.integers(1, 3)), 0.1) * rng.uniform(0.5, 1.0))
    if rng.random() < 0.5:  # at run time the guide of a whole (letterboxed) photo is coarser than the network input
        side = int(min(h, w) * rng.uniform(0.35, 0.75))
        out = cv2.resize(cv2.resize(out, (side, side), interpolation=cv2.INTER_AREA), (w, h),
                         interpolation=cv2.INTER_LINEAR)
    if rng.random() < 0.25:
        small = max(8, int(min(h, w) * rng.uniform(0.1, 0.3)))
        out = cv2.resize(cv2.resize(out, (small, small), interpolation=cv2.INTER_AREA), (w, h),
                         interpolation=cv2.INTER_LINEAR)
    if rng.random() < 0.15:
        out = (out > rng.uniform(0.3, 0.7)).astype(np.float32)
    return np.clip(out, 0.0, 1.0)
