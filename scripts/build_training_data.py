"""Build the pseudo-labelled training set the shipped weights are trained on, from legal material only.

Sources (see ../shared/data/README.md for licences): frames of the CC-BY 4.0 Intel sample videos
(ASL clips, the room video), the Pixabay portrait video and the three Pixabay photos. The four
portraits in ../shared/data/portraits are the validation set and are never read here.

Labels: a coarse person mask from the reference selfie-segmentation model (letterboxed, not squashed),
or for the room video a difference against a clean background plate (the temporal median), is turned
into a trimap (erode / dilate) and refined into a soft alpha by closed-form matting (pymatting); the
foreground colour is then estimated with pymatting's multilevel method so composites carry no halo.
The labelling steps live in greenless.data.pseudo_labels (scripts/build_extra_data.py uses them too).

Output layout (Composition-1K style, read by greenless.data): OUT/fg/*.png, OUT/alpha/*.png,
OUT/image/*.jpg (the original frame, for training on real context too), OUT/bg/*.jpg (backgrounds:
the shared backgrounds plus clean room plates), OUT/manifest.json.

    python scripts/build_training_data.py --shared ../shared -o runs/data
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

from scipy.ndimage import binary_fill_holes
import cv2
import numpy as np

from greenless.cli.script import need_path, progress, run_script
from greenless.errors import GreenlessError
from greenless.data.pseudo_labels import (crop_to_person, largest_components, read_frames, refine,
                                          segment_person)
from greenless.evaluate.reference import ReferenceSegmenter
from greenless.media.images import write_bytes_atomic


JPEG_95 = [cv2.IMWRITE_JPEG_QUALITY, 95]


def write_image(path: Path, bgr: np.ndarray, params: list[int] | None = None) -> None:
    """OpenCV's encoding (as the set was first built), written atomically: a Ctrl-C never leaves half a file that a
    rerun would take for a finished one."""
    ok, data = cv2.imencode(path.suffix, bgr, params or [])
    if not ok:
        raise GreenlessError(f"{path}: cannot encode")
    write_bytes_atomic(path, data.tobytes())


# The reference mask of this photo takes in the city behind the woman; its label would teach errors.
EXCLUDED_PHOTOS = {"woman-5883428_1280"}


def room_samples(video: Path, segmenter: ReferenceSegmenter, every: int) -> tuple[list, list[np.ndarray]]:
    """Frames of the room video with a person, masked by differencing against the median plate."""
    all_frames = read_frames(video, every=1)
    stack = np.stack([f for _, f in all_frames[:: max(1, len(all_frames) // 60)]])
    plate = np.median(stack, axis=0).astype(np.uint8)
    samples = []
    for idx, rgb in all_frames[::every]:
        diff = np.abs(rgb.astype(np.int16) - plate.astype(np.int16)).max(axis=2)
        moving = cv2.morphologyEx((diff > 35).astype(np.uint8), cv2.MORPH_CLOSE, np.ones((7, 7), np.uint8))
        person = segmenter(rgb, mode="pad") > 0.3
        person = cv2.dilate(person.astype(np.uint8), np.ones((15, 15), np.uint8))
        mask = largest_components(moving & person)
        if mask.sum() < 0.01 * mask.size:
            continue
        mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
        mask = binary_fill_holes(mask).astype(np.uint8)  # dark clothes against the dark table leave holes
        crop, crop_mask = crop_to_person(rgb, mask.astype(np.float32))
        samples.append((f"room_{idx:05d}", crop, crop_mask))
    plates = [plate]
    return samples, plates


def segmented_samples(name: str, frames: list[tuple[int, np.ndarray]], segmenter: ReferenceSegmenter) -> list:
    """Frames whose coarse mask comes from the reference model (letterboxed, keeps the aspect ratio)."""
    samples = []
    for idx, rgb in frames:
        mask = segment_person(segmenter, rgb)
        if mask is not None:
            samples.append((f"{name}_{idx:05d}", rgb, mask))
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared")
    parser.add_argument("-o", "--output", type=Path, default=Path("runs/data"))
    parser.add_argument("--asl-every", type=int, default=12)
    parser.add_argument("--room-every", type=int, default=12)
    parser.add_argument("--portrait-video-every", type=int, default=15)
    args = parser.parse_args()
    data = need_path(args.shared / "data", "the shared data, --shared", "dir")
    videos = need_path(data / "videos", "the shared videos", "dir")
    portrait_video = need_path(videos / "thoughtful-35590.mp4", "the portrait video", "file")
    room_video = need_path(videos / "one-by-one-person-detection.mp4", "the room video", "file")
    model = need_path(args.shared / "models" / "selfie_segmentation.onnx", "the reference model", "file")
    out = args.output
    for sub in ("fg", "alpha", "image", "bg"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    segmenter = ReferenceSegmenter(model)

    # Each source takes seconds to a minute to read and segment: one step of progress per source.
    sources: list[tuple[str, Callable[[], list]]] = []
    for clip in sorted((videos / "asl").glob("*.mkv")):
        sources.append((f"asl_{clip.stem}", lambda clip=clip: segmented_samples(
            f"asl_{clip.stem}", read_frames(clip, args.asl_every, start=3), segmenter)))
    sources.append(("thoughtful", lambda: segmented_samples(
        "thoughtful", read_frames(portrait_video, args.portrait_video_every), segmenter)))
    for photo in sorted((data / "photos").glob("*.jpg")):
        if photo.stem not in EXCLUDED_PHOTOS:
            sources.append((f"photo_{photo.stem}", lambda photo=photo: segmented_samples(
                f"photo_{photo.stem}", [(0, cv2.cvtColor(cv2.imread(str(photo)), cv2.COLOR_BGR2RGB))], segmenter)))
    plates: list[np.ndarray] = []

    def room() -> list:
        samples, found = room_samples(room_video, segmenter, args.room_every)
        plates.extend(found)
        return samples

    sources.append(("room", room))
    samples: list = []
    for _, collect in progress(sources, "segmenting sources"):
        samples += collect()

    for bg in sorted((data / "backgrounds").glob("*.jpg")):
        img = cv2.imread(str(bg))
        scale = 1280 / max(img.shape[:2])
        if scale < 1:
            img = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        write_image(out / "bg" / bg.name, img, JPEG_95)
    for i, plate in enumerate(plates):
        write_image(out / "bg" / f"room_plate_{i}.jpg", cv2.cvtColor(plate, cv2.COLOR_RGB2BGR))

    written = []
    for name, rgb, mask in progress(samples, "matting pseudo-labels"):
        if not (out / "alpha" / f"{name}.png").exists():  # the alpha is written last: it marks a finished sample
            alpha, fg = refine(rgb, mask)
            write_image(out / "image" / f"{name}.jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), JPEG_95)
            write_image(out / "fg" / f"{name}.png", cv2.cvtColor((fg * 255 + 0.5).astype(np.uint8), cv2.COLOR_RGB2BGR))
            write_image(out / "alpha" / f"{name}.png", (alpha * 255 + 0.5).astype(np.uint8))
        written.append(name)
    manifest = {
        "samples": written,
        "backgrounds": sorted(p.name for p in (out / "bg").glob("*.jpg")),
        "sources": {
            "asl_*, room_*, room_plate_*": "Intel IoT DevKit sample-videos, CC BY 4.0",
            "thoughtful_*, photo_*, Pixabay backgrounds": "Pixabay content (via Volcomix/virtual-background)",
            "beach, desert, sky, sunset": "anilsathyan7/Portrait-Segmentation test images, MIT",
        },
        "labels": "reference selfie segmentation (letterboxed) or plate differencing -> trimap -> closed-form matting",
    }
    write_bytes_atomic(out / "manifest.json", json.dumps(manifest, indent=2).encode())
    print(f"{len(written)} labelled samples, {len(manifest['backgrounds'])} backgrounds in {out}")


if __name__ == "__main__":
    run_script(main)
