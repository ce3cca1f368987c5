"""Build extra training data from licence-clean sources: labelled synthetic people and 200+ backgrounds.

People: ``openpeople`` (PyPI, MIT; 10 synthetic people, 6 pictures each). Its studio pictures (portrait,
full-body posture, the character sheet's 8 panels and the emotion sheet's 16) are shot on a plain grey
backdrop: a smooth plate fitted to the backdrop predicts it under the person, the difference to it gives
a tight trimap and closed-form matting gives an almost exact alpha (greenless.data.pseudo_labels.
studio_matte). Its two amateur pictures (selfie, full body outdoors or at home) have real backgrounds and
get the recipe of scripts/build_training_data.py: the reference selfie model's mask refined by
closed-form matting. The package does not need to be installed: the script reads its files from the
installed package, an unpacked folder or the wheel itself (``--openpeople``).

Backgrounds (OUT/bg, long side <= 1280, each listed with source and licence in OUT/bg/SOURCES.md and
OUT/manifest.json): scikit-image's sample photos whose licence is CC0 or public domain and that show no
person (read from the installed package or its wheel, ``--skimage``); the person-free sides of
openpeople's amateur pictures (MIT); clean plates of the room video (frames with nobody in them;
Intel IoT DevKit sample-videos, CC BY 4.0); crops and small rotations of the 8 shared backgrounds (a
minor share; Pixabay content and MIT); and procedurally rendered ones (gradients, cloud noise, bokeh,
stripes and plaids, mosaics, walls, landscapes, room interiors; made here, no licence needed), as many
as it takes to reach ``--min-backgrounds``. Everything is seeded: the same inputs give the same files.

The four portraits in ../shared/data/portraits are the validation set and are never read here. No
GPL/AGPL model or data is used, not even as a teacher (the reference model is Apache-2.0 MediaPipe).

Output (Composition-1K layout, read by greenless.data): OUT/fg/*.png, OUT/alpha/*.png, OUT/image/*.jpg,
OUT/bg/*.jpg, OUT/manifest.json; OUT/preview/*.png are contact sheets of the labels for a human look.

    pip install -e '.[train,video]'               # openpeople and scikit-image come with the train extra
    python scripts/build_extra_data.py -o runs/data-extra
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import cv2
import numpy as np

from greenless.cli.script import need_path, progress, run_script
from greenless.data.pseudo_labels import largest_components, read_frames, refine, segment_person, studio_matte
from greenless.errors import GreenlessError
from greenless.evaluate.reference import ReferenceSegmenter
from greenless.media.images import write_bytes_atomic

REPO = Path(__file__).resolve().parents[1]
OPENPEOPLE_LICENCE = "MIT (openpeople, Copyright (c) 2026 Prompt Haus; synthetic people)"
STUDIO_ASSETS = ("studio_portrait", "studio_posture")
AMATEUR_ASSETS = ("amateur_selfie", "amateur_posture")
# scikit-image sample images used as backgrounds: (file, what, licence as its skimage.data docstring says).
# Left out on purpose: astronaut and camera (people), coins, moon, page, logo, motorcycle (no licence
# stated), retina, cells and other microscopy (not a background), horse (a silhouette).
SKIMAGE_PHOTOS = (
    ("coffee.png", "coffee cup on a table (Rachel Michetti)", "CC0"),
    ("chelsea.png", "a cat (Stefan van der Walt)", "CC0"),
    ("rocket.jpg", "Falcon 9 launch (SpaceX)", "public domain"),
    ("hubble_deep_field.jpg", "Hubble eXtreme Deep Field (NASA)", "public domain"),
    ("brick.png", "brick wall texture (CC0Textures)", "CC0"),
    ("grass.png", "grass texture (CC0Textures)", "CC0"),
    ("gravel.png", "gravel texture (CC0Textures)", "CC0"),
    ("clock_motion.png", "wall clock, motion blurred (Stefan van der Walt)", "public domain"),
)
# Labels dropped after looking at the contact sheets (OUT/preview) by eye (name -> why).
EXCLUDED = {
    "op_P004_character_sheet_01": "backdrop behind the neck taken for person (dark, vignetted backdrop)",
    "op_P004_character_sheet_03": "backdrop behind the neck taken for person",
    "op_P008_studio_posture": "a wedge of backdrop between the legs",
    "op_P008_character_sheet_04": "a blob of backdrop between the legs",
    "op_P008_character_sheet_06": "a blob of backdrop between the legs",
    "op_P006_amateur_selfie": "the bench behind her taken in",
    "op_P007_amateur_selfie": "the table and the coffee cup taken in",
}
# Strips of amateur pictures with someone in them that the reference model misses (seen by eye).
BG_EXCLUDED = {
    "openpeople_P001_amateur_posture_left": "people walking in the distance",
    "openpeople_P001_amateur_posture_right": "two people sitting on the grass",
    "openpeople_P004_amateur_posture_right": "small people in the distance",
    "openpeople_P006_amateur_posture_right": "a blue patch that may be the person's hand",
    "openpeople_P008_amateur_posture_right": "someone on a bench",
    "openpeople_P010_amateur_posture_left": "someone in the blurred distance",
    "openpeople_P010_amateur_posture_right": "someone on a bench in the blurred distance",
}


# ---------------------------------------------------------------------------------------------- files
class PackageFiles:
    """Read-only view of a Python package's files: an installed or unpacked folder, or a wheel (zip).

    Lets the script use data that ships inside a package without installing (or importing) it.
    """

    def __init__(self, root: Path, package: str) -> None:
        self.zip: zipfile.ZipFile | None = None
        if root.is_file():
            self.zip = zipfile.ZipFile(root)
            self.prefix = f"{package}/"
            self.names = sorted(n for n in self.zip.namelist() if n.startswith(self.prefix))
        else:
            self.dir = root / package if (root / package).is_dir() else root
        self.where = str(root)

    @classmethod
    def locate(cls, package: str, given: Path | None) -> "PackageFiles | None":
        """The package from ``given`` (wheel or folder) or, failing that, from the environment (not imported)."""
        if given is not None:
            if not given.exists():
                raise GreenlessError(f"{given}: no such wheel or folder")
            return cls(given, package)
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            return None
        return cls(Path(list(spec.submodule_search_locations)[0]), package)

    def exists(self, rel: str) -> bool:
        if self.zip is not None:
            return self.prefix + rel in self.names
        return (self.dir / rel).is_file()

    def listdir(self, rel: str) -> list[str]:
        """Names directly under the folder ``rel``, sorted."""
        if self.zip is not None:
            base = self.prefix + rel.rstrip("/") + "/"
            return sorted({n[len(base):].split("/")[0] for n in self.names if n.startswith(base)})
        return sorted(p.name for p in (self.dir / rel).iterdir())

    def read_rgb(self, rel: str) -> np.ndarray:
        """An image file of the package as RGB uint8 (grey and RGBA images are converted)."""
        if self.zip is not None:
            data = np.frombuffer(self.zip.read(self.prefix + rel), np.uint8)
        else:
            data = np.fromfile(str(self.dir / rel), np.uint8)
        img = cv2.imdecode(data, cv2.IMREAD_COLOR)
        if img is None:
            raise GreenlessError(f"{self.where}: cannot decode {rel}")
        return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def fit_side(img: np.ndarray, side: int) -> np.ndarray:
    """Downscale so the long side is at most ``side`` (never upscale)."""
    scale = side / max(img.shape[:2])
    if scale >= 1:
        return img
    return cv2.resize(img, (round(img.shape[1] * scale), round(img.shape[0] * scale)), interpolation=cv2.INTER_AREA)


def write_rgb(path: Path, rgb: np.ndarray, quality: int = 95) -> None:
    """Write RGB uint8 as JPEG or PNG (by suffix)."""
    write_cv2(path, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), quality)


def write_cv2(path: Path, img: np.ndarray, quality: int = 95) -> None:
    """OpenCV's encoding (as the set was first built; by suffix), written atomically: a Ctrl-C never leaves half a
    file that a rerun would take for a finished one."""
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if path.suffix == ".jpg" else [cv2.IMWRITE_PNG_COMPRESSION, 3]
    ok, data = cv2.imencode(path.suffix, img, params)
    if not ok:
        raise GreenlessError(f"{path}: cannot encode")
    write_bytes_atomic(path, data.tobytes())


def to_u8(x: np.ndarray) -> np.ndarray:
    return (np.clip(x, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


# ---------------------------------------------------------------------------------------------- people
def find_panels(sheet: np.ndarray, inset: float = 0.012) -> list[tuple[int, int, int, int]]:
    """Inner boxes (x0, y0, x1, y1) of the white-framed panels of an openpeople sheet, row by row.

    The frames are thin near-white rectangles on the grey backdrop: the outline of each bright connected
    component whose box is large and mostly empty inside (a frame, not a white shirt) is one panel.
    """
    h, w = sheet.shape[:2]
    hsv = cv2.cvtColor(sheet, cv2.COLOR_RGB2HSV)
    white = ((hsv[..., 2] > 215) & (hsv[..., 1] < 40)).astype(np.uint8)
    n, _, stats, _ = cv2.connectedComponentsWithStats(white, 8)
    boxes = []
    for i in range(1, n):
        x, y, bw, bh, area = stats[i]
        if bw < 0.12 * w or bh < 0.12 * h or area > 0.6 * bw * bh:
            continue
        d = int(round(inset * max(bw, bh))) + 3
        boxes.append((x + d, y + d, x + bw - d, y + bh - d))
    row_h = 0.1 * h
    return sorted(boxes, key=lambda b: (round(b[1] / row_h), b[0]))


def people_pictures(files: PackageFiles, emotions_per_person: int, seed: int, max_side: int,
                    only: set[str] | None = None) -> Iterator[tuple[str, str, str, str, np.ndarray]]:
    """(name, person, asset, method, RGB) for every picture or sheet panel that gets a label."""
    for person in files.listdir("data/curated"):
        base = f"data/curated/{person}/assets"
        if not files.exists(f"{base}/studio_portrait.jpg") or (only and person not in only):
            continue
        for asset in STUDIO_ASSETS:
            rgb = fit_side(files.read_rgb(f"{base}/{asset}.jpg"), max_side)
            yield f"op_{person}_{asset}", person, asset, "studio", rgb
        for asset, keep in (("character_sheet", None), ("emotions_sheet", emotions_per_person)):
            sheet = files.read_rgb(f"{base}/{asset}.jpg")
            panels = find_panels(sheet)
            chosen = range(len(panels))
            if keep is not None and keep < len(panels):
                rng = np.random.default_rng([seed, int(person.lstrip("P") or 0), 7])
                chosen = sorted(rng.choice(len(panels), size=keep, replace=False).tolist())
            for i in chosen:
                x0, y0, x1, y1 = panels[i]
                yield (f"op_{person}_{asset}_{i:02d}", person, f"{asset}[{i}]", "studio",
                       fit_side(sheet[y0:y1, x0:x1], max_side))
        for asset in AMATEUR_ASSETS:
            rgb = fit_side(files.read_rgb(f"{base}/{asset}.jpg"), max_side)
            yield f"op_{person}_{asset}", person, asset, "segmented", rgb


def label_picture(rgb: np.ndarray, method: str, segmenter: ReferenceSegmenter,
                  seed: int) -> tuple[np.ndarray, np.ndarray, dict] | str:
    """(alpha, fg, stats) of one picture, or the reason it is rejected.

    Studio shots: fitted plate + closed-form matting; rejected when the backdrop is not plain (large
    residual), the unknown band is huge, or the result disagrees with the reference mask (IoU < 0.8),
    which means the plate or the mask went wrong. Amateur pictures: the reference mask refined by
    closed-form matting; rejected when refinement moved far from the mask (IoU < 0.85).
    """
    coarse = segment_person(segmenter, rgb, min_fraction=0.02)
    if coarse is None:
        return "reference model finds no person"
    if method == "studio":
        alpha, fg, stats = studio_matte(rgb, coarse, seed=seed)
        if stats["residual_scale"] > 8.0:
            return f"backdrop not plain (residual {stats['residual_scale']:.1f})"
        if stats["unknown_fraction"] > 0.3:
            return f"unknown band too large ({stats['unknown_fraction']:.2f})"
    else:
        alpha, fg = refine(rgb, coarse)
        stats = {}
    hard, ref = alpha > 0.5, coarse > 0.5
    iou = float((hard & ref).sum() / max(1, (hard | ref).sum()))
    stats["iou_with_reference"] = iou
    if iou < (0.8 if method == "studio" else 0.85):
        return f"label disagrees with the reference mask (IoU {iou:.2f})"
    return alpha, fg, stats


def contact_sheets(out: Path, names: list[str], per_sheet: int = 10, box: int = 256) -> None:
    """Preview sheets for a human look at the labels: image | alpha | composite on green | on magenta."""
    (out / "preview").mkdir(exist_ok=True)
    for old in (out / "preview").glob("labels_*.png"):
        old.unlink()

    def fit(t: np.ndarray) -> np.ndarray:
        scale = box / max(t.shape[:2])
        t = cv2.resize(t, (max(1, round(t.shape[1] * scale)), max(1, round(t.shape[0] * scale))),
                       interpolation=cv2.INTER_AREA)
        canvas = np.full((box, box, 3), 0.3, np.float32)
        y, x = (box - t.shape[0]) // 2, (box - t.shape[1]) // 2
        canvas[y:y + t.shape[0], x:x + t.shape[1]] = t
        return canvas

    rows = []
    for name in names:
        img = cv2.imread(str(out / "image" / f"{name}.jpg")).astype(np.float32) / 255
        fg = cv2.imread(str(out / "fg" / f"{name}.png")).astype(np.float32) / 255
        a = cv2.imread(str(out / "alpha" / f"{name}.png"), cv2.IMREAD_GRAYSCALE).astype(np.float32)[..., None] / 255
        tiles = [img, np.repeat(a, 3, 2), fg * a + (1 - a) * np.array([0.25, 0.7, 0.0], np.float32),
                 fg * a + (1 - a) * np.array([0.6, 0.2, 0.9], np.float32)]
        row = (np.hstack([fit(t) for t in tiles]) * 255).astype(np.uint8)
        cv2.putText(row, name, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 255), 1, cv2.LINE_AA)
        rows.append(row)
    blank = np.zeros((box, 4 * box, 3), np.uint8)
    for k in range(0, len(rows), per_sheet):
        chunk = rows[k:k + per_sheet]
        chunk += [blank] * (-len(chunk) % 2)
        sheet = np.vstack([np.hstack(chunk[i:i + 2]) for i in range(0, len(chunk), 2)])
        cv2.imwrite(str(out / "preview" / f"labels_{k // per_sheet:02d}.png"), sheet)


def build_people(files: PackageFiles, out: Path, segmenter: ReferenceSegmenter, args: argparse.Namespace) -> dict:
    """Label every openpeople picture and panel; write fg/alpha/image; return the manifest part."""
    written, rejected, people, pictures = [], {}, set(), set()
    previous = {e["name"]: e for e in args.previous.get("samples", [])}
    t0 = time.monotonic()
    only = set(args.only.split(",")) if args.only else None
    for name, person, asset, method, rgb in people_pictures(files, args.emotions_per_person, args.seed,
                                                            args.max_side, only):
        people.add(person)
        pictures.add((person, asset.split("[")[0]))
        if name in EXCLUDED:
            rejected[name] = f"excluded after review: {EXCLUDED[name]}"
            continue
        if (out / "alpha" / f"{name}.png").exists() and not args.force:
            written.append(previous.get(name, {"name": name, "person": person, "asset": asset, "method": method}))
            continue
        result = label_picture(rgb, method, segmenter, args.seed)
        if isinstance(result, str):
            rejected[name] = result
            print(f"  reject {name}: {result}", flush=True)
            continue
        alpha, fg, stats = result
        write_rgb(out / "image" / f"{name}.jpg", rgb)
        write_rgb(out / "fg" / f"{name}.png", to_u8(fg))
        write_cv2(out / "alpha" / f"{name}.png", to_u8(alpha))  # last: it marks a finished picture
        written.append({"name": name, "person": person, "asset": asset, "method": method,
                        **{k: round(v, 4) for k, v in stats.items()}})
        print(f"  {name} ({method}, {rgb.shape[1]}x{rgb.shape[0]}) {time.monotonic() - t0:.0f}s", flush=True)
    for stale in EXCLUDED:
        for sub, ext in (("fg", "png"), ("alpha", "png"), ("image", "jpg")):
            (out / sub / f"{stale}.{ext}").unlink(missing_ok=True)
    contact_sheets(out, [w["name"] for w in written])
    return {"people": len(people), "pictures": len(pictures), "samples": written, "rejected": rejected,
            "licence": OPENPEOPLE_LICENCE}


# ---------------------------------------------------------------------------------------------- backgrounds
@dataclass
class Background:
    """One background image with where it came from."""

    name: str
    rgb: np.ndarray = field(repr=False)
    source: str
    licence: str
    detail: str


def random_view(rng: np.random.Generator, img: np.ndarray, area: tuple[float, float] = (0.45, 0.8),
                max_angle: float = 0.0) -> np.ndarray:
    """A random crop (``area``: its share of the picture), rotated by up to ``max_angle`` degrees, maybe mirrored."""
    h, w = img.shape[:2]
    if max_angle:
        angle = rng.uniform(-max_angle, max_angle)
        m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
        img = cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        # crop away the reflected corners: the largest centred box free of them
        t = abs(np.sin(np.radians(angle)))
        img = img[int(h * t * 0.6) + 1:h - int(h * t * 0.6) - 1, int(w * t * 0.6) + 1:w - int(w * t * 0.6) - 1]
        h, w = img.shape[:2]
    share = rng.uniform(*area)
    aspect = rng.uniform(0.75, 1.33)
    ch = int(min(h, np.sqrt(share * h * w / aspect)))
    cw = int(min(w, ch * aspect))
    y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    view = img[y:y + ch, x:x + cw]
    return view[:, ::-1].copy() if rng.random() < 0.5 else view.copy()


def at_least(img: np.ndarray, side: int = 512) -> np.ndarray:
    """Upscale small images so the short side is at least ``side`` (the trainer crops 256 px at scale 1-2)."""
    scale = side / min(img.shape[:2])
    if scale <= 1:
        return img
    return cv2.resize(img, (round(img.shape[1] * scale), round(img.shape[0] * scale)), interpolation=cv2.INTER_CUBIC)


def skimage_backgrounds(files: PackageFiles | None, seed: int) -> list[Background]:
    """The CC0 / public-domain photos of scikit-image, each whole and as two random views (grey ones tinted too)."""
    if files is None:
        print("  scikit-image not found (pip install -e '.[train]', or pass --skimage WHEEL): no photos from it")
        return []
    out = []
    for k, (fname, what, licence) in enumerate(SKIMAGE_PHOTOS):
        if not files.exists(f"data/{fname}"):
            print(f"  scikit-image has no data/{fname}: skipped")
            continue
        img = files.read_rgb(f"data/{fname}")
        rng = np.random.default_rng([seed, 11, k])
        stem = Path(fname).stem
        variants = [img, random_view(rng, img), random_view(rng, img, max_angle=8)]
        grey = float(np.abs(img[..., 0].astype(int) - img[..., 2]).mean()) < 1.0
        for v, view in enumerate(variants):
            if grey and v > 0:  # a grey texture: give the view a colour cast so it is not just grey
                tint = rng.uniform(0.6, 1.15, 3)
                view = np.clip(view.astype(np.float32) * tint, 0, 255).astype(np.uint8)
            out.append(Background(f"skimage_{stem}_{v}", fit_side(at_least(view), 1280), "scikit-image sample data",
                                  f"{licence} (per skimage.data; package BSD-3-Clause)",
                                  what + ("" if v == 0 else f", random view {v}")))
    return out


def amateur_backgrounds(files: PackageFiles, segmenter: ReferenceSegmenter,
                        min_share: float = 0.15) -> list[Background]:
    """Person-free strips of openpeople's amateur pictures: beside (or above) the person, full height (width).

    The reference mask (its main component), dilated by 4% of the picture, marks where the person is; a
    strip at a side of the picture at least ``min_share`` of its width (height) that stays clear is kept.
    A strip where the reference model still sees any person (someone in the distance) is dropped.
    """
    out = []
    for person in files.listdir("data/curated"):
        for asset in AMATEUR_ASSETS:
            rel = f"data/curated/{person}/assets/{asset}.jpg"
            if not files.exists(rel):
                continue
            rgb = fit_side(files.read_rgb(rel), 1280)
            h, w = rgb.shape[:2]
            mask = largest_components(segmenter(rgb, mode="pad") > 0.3)
            pad = int(0.04 * max(h, w))
            mask = cv2.dilate(mask, np.ones((2 * pad + 1, 2 * pad + 1), np.uint8)) > 0
            cols, rows = np.flatnonzero(mask.any(axis=0)), np.flatnonzero(mask.any(axis=1))
            if len(cols) == 0:
                continue
            strips = {"left": rgb[:, :cols[0]], "right": rgb[:, cols[-1] + 1:], "top": rgb[:rows[0]]}
            for side, strip in strips.items():
                share = strip.shape[1] / w if side != "top" else strip.shape[0] / h
                name = f"openpeople_{person}_{asset}_{side}"
                if share < min_share or name in BG_EXCLUDED:
                    continue
                if (segmenter(strip, mode="pad") > 0.5).mean() > 0.002:
                    print(f"  {person} {asset} {side}: someone in the strip, dropped")
                    continue
                out.append(Background(name, strip.copy(), "openpeople amateur picture",
                                      OPENPEOPLE_LICENCE, f"{person}/{asset}.jpg, {side} strip without the person"))
    return out


def room_plates(video: Path, segmenter: ReferenceSegmenter, seed: int, every: int = 2,
                count: int = 4) -> list[Background]:
    """Clean plates of the room video: medians of runs of frames with nobody in them, whole and as views.

    A frame is empty when the reference model finds no person in it (the video's overall median is no
    plate: people stand at the table for most of the clip and leave a ghost in it). Plates come from
    runs of 5 empty frames far apart in time (the light and the papers on the table change); their median
    averages out sensor noise.
    """
    frames = read_frames(video, every=every)
    empty = [(segmenter(f, mode="pad") > 0.5).mean() < 0.001 for _, f in progress(frames, "  looking for empty room frames")]
    picks: list[int] = []
    for i in range(len(frames) - 4):
        if all(empty[i:i + 5]) and all(abs(i - j) > len(frames) // (count + 1) for j in picks):
            picks.append(i)
        if len(picks) == count:
            break
    out = []
    for k, i in enumerate(picks):
        plate = np.median(np.stack([frames[j][1] for j in range(i, i + 5)]), axis=0).astype(np.uint8)
        rng = np.random.default_rng([seed, 13, k])
        for v, view in enumerate([plate, random_view(rng, plate, (0.35, 0.6)), random_view(rng, plate, (0.35, 0.6))]):
            out.append(Background(f"room_plate_{frames[i][0]:05d}_{v}", at_least(view), "room video clean plate",
                                  "CC BY 4.0 (Intel IoT DevKit sample-videos; attribution required)",
                                  f"one-by-one-person-detection.mp4 frames {frames[i][0]}-{frames[i + 4][0]}, "
                                  + ("whole" if v == 0 else f"random view {v}")))
    return out


def shared_variants(folder: Path, seed: int, per_image: int = 2) -> list[Background]:
    """Crops with small rotations of the shared background photos (the originals are in runs/data/bg)."""
    mit = "MIT (anilsathyan7/Portrait-Segmentation)"
    licences = {"beach": mit, "desert": mit, "sky": mit, "sunset": mit}
    pixabay = "Pixabay content (Pixabay licence; via Volcomix/virtual-background)"
    out = []
    for k, path in enumerate(sorted(folder.glob("*.jpg"))):
        img = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        rng = np.random.default_rng([seed, 17, k])
        for v in range(per_image):
            view = fit_side(at_least(random_view(rng, img, max_angle=10)), 1280)
            out.append(Background(f"shared_{path.stem}_{v}", view, "shared background, crop and rotation",
                                  licences.get(path.stem, pixabay),
                                  f"../shared/data/backgrounds/{path.name}, random view {v}"))
    return out


# ---- procedural backgrounds: everything below is rendered here from a seeded generator (no licence needed)
def palette(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` colours (float RGB 0-1) around a random hue: analogous, complementary or muted schemes."""
    base = rng.uniform(0, 180)
    scheme = rng.choice(["analogous", "complement", "muted", "any"])
    hues = {"analogous": base + rng.uniform(-20, 20, n),
            "complement": base + 90 * rng.integers(0, 2, n) + rng.uniform(-8, 8, n),
            "muted": base + rng.uniform(-30, 30, n), "any": rng.uniform(0, 180, n)}[scheme] % 180
    sat = rng.uniform(20, 120, n) if scheme == "muted" else rng.uniform(40, 230, n)
    val = rng.uniform(50, 250, n)
    hsv = np.stack([hues, sat, val], axis=1).astype(np.uint8)[None]
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0].astype(np.float32) / 255.0


def fbm(rng: np.random.Generator, h: int, w: int, octaves: int = 6, base: int = 3,
        persistence: float = 0.55) -> np.ndarray:
    """Fractal value noise in [0, 1]: random grids from coarse to fine, smoothly upsampled and summed."""
    out = np.zeros((h, w), np.float32)
    amp, total = 1.0, 0.0
    for o in range(octaves):
        gh, gw = base * 2 ** o, max(2, int(base * 2 ** o * w / h))
        grid = rng.random((gh + 1, gw + 1)).astype(np.float32)
        out += amp * cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
        total += amp
        amp *= persistence
    out /= total
    return (out - out.min()) / max(1e-6, float(out.max() - out.min()))


def ramp(values: np.ndarray, colours: np.ndarray) -> np.ndarray:
    """Map values in [0, 1] through a piecewise-linear colour ramp."""
    stops = np.linspace(0, 1, len(colours))
    return np.stack([np.interp(values, stops, colours[:, c]) for c in range(3)], axis=-1).astype(np.float32)


def grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    return yy / h, xx / w


def bg_gradient(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Linear or radial blend of 2-3 colours, with a little noise (studio sweeps, walls in soft light)."""
    yy, xx = grid(h, w)
    if rng.random() < 0.5:
        a = rng.uniform(0, 2 * np.pi)
        t = (xx - 0.5) * np.cos(a) + (yy - 0.5) * np.sin(a) + 0.5
    else:
        cy, cx = rng.uniform(0.2, 0.8, 2)
        t = np.sqrt((yy - cy) ** 2 + (xx - cx) ** 2) * rng.uniform(1.0, 2.0)
    img = ramp(np.clip(t, 0, 1), palette(rng, int(rng.integers(2, 4))))
    return img + (fbm(rng, h, w, 4)[..., None] - 0.5) * rng.uniform(0.02, 0.12)


def bg_clouds(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Fractal cloud or marble-like noise through a colour ramp."""
    n = fbm(rng, h, w, int(rng.integers(4, 8)), int(rng.integers(2, 6)), rng.uniform(0.4, 0.7))
    if rng.random() < 0.35:  # marble veins
        yy, xx = grid(h, w)
        n = 0.5 + 0.5 * np.sin((xx * rng.uniform(3, 12) + n * rng.uniform(3, 8)) * np.pi)
    return ramp(n, palette(rng, int(rng.integers(2, 5))))


def bg_bokeh(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Out-of-focus lights: many soft discs of light over a dark, blurred base (night streets, parties)."""
    base = bg_gradient(rng, h, w) * rng.uniform(0.15, 0.6)
    light = np.zeros((h, w, 3), np.float32)
    cols = palette(rng, 4)
    r_max = rng.uniform(0.02, 0.08) * max(h, w)
    for _ in range(int(rng.integers(25, 120))):
        r = int(max(3, rng.uniform(0.3, 1.0) * r_max))
        c = cols[int(rng.integers(len(cols)))] * rng.uniform(0.2, 0.8)
        layer = np.zeros_like(light)
        cv2.circle(layer, (int(rng.integers(0, w)), int(rng.integers(0, h))), r, c.tolist(), -1, cv2.LINE_AA)
        light += layer
    light = cv2.GaussianBlur(light, (0, 0), max(1.0, r_max * rng.uniform(0.03, 0.15)))
    return cv2.GaussianBlur(base, (0, 0), 8) + light


def bg_stripes(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Stripes, checks or plaid (wallpaper, curtains, fabric), sometimes slightly defocused."""
    yy, xx = grid(h, w)
    cols = palette(rng, int(rng.integers(2, 5)))
    a = rng.uniform(0, np.pi)
    t = (xx * w * np.cos(a) + yy * h * np.sin(a)) / rng.uniform(12, 120)
    band = (np.floor(t) % len(cols)).astype(int) if rng.random() < 0.6 else (0.5 + 0.5 * np.sin(t * np.pi))
    img = cols[band] if band.dtype.kind == "i" else ramp(band, cols)
    if rng.random() < 0.4:  # plaid: a second set across
        t2 = (-xx * w * np.sin(a) + yy * h * np.cos(a)) / rng.uniform(12, 120)
        img = 0.6 * img + 0.4 * cols[(np.floor(t2) % len(cols)).astype(int)]
    if rng.random() < 0.5:
        img = cv2.GaussianBlur(img.astype(np.float32), (0, 0), rng.uniform(1, 6))
    return img * (0.85 + 0.3 * fbm(rng, h, w, 3)[..., None])


def bg_mosaic(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Voronoi tiles (stained glass, stone floors, abstract posters), with or without grout lines."""
    from scipy.spatial import cKDTree

    n = int(rng.integers(20, 400))
    pts = rng.random((n, 2)) * (h, w)
    sh, sw = max(8, h // 4), max(8, w // 4)
    yy, xx = np.mgrid[0:sh, 0:sw]
    dist, idx = cKDTree(pts / 4).query(np.stack([yy.ravel(), xx.ravel()], axis=1), k=2)
    cols = palette(rng, int(rng.integers(3, 7)))
    tile = cols[rng.integers(0, len(cols), n)] * rng.uniform(0.8, 1.2, (n, 1))
    img = cv2.resize(tile[idx[:, 0]].reshape(sh, sw, 3).astype(np.float32), (w, h), interpolation=cv2.INTER_NEAREST)
    if rng.random() < 0.6:
        edge = cv2.resize((dist[:, 1] - dist[:, 0]).reshape(sh, sw).astype(np.float32), (w, h)) < rng.uniform(0.4, 1.2)
        img[edge] = palette(rng, 1)[0] * 0.5
    return cv2.GaussianBlur(img, (0, 0), rng.uniform(0.5, 3))


def bg_wall(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Brick, tile or plank walls with mortar, colour jitter, grime and a light falloff."""
    yy, xx = grid(h, w)
    bh = rng.uniform(0.03, 0.12) * h
    bw = bh * rng.uniform(1.0, 3.5)
    row = np.floor(yy * h / bh)
    offset = (row % 2) * bw * rng.choice([0.0, 0.5])
    col = np.floor((xx * w + offset) / bw)
    ids = (row * 1009 + col).astype(np.int64) % 4096
    base = palette(rng, 1)[0]
    jitter = rng.uniform(0.75, 1.2, (4096, 3)).astype(np.float32)
    img = base * jitter[ids]
    mortar = ((yy * h) % bh < bh * 0.08) | (((xx * w + offset) % bw) < bh * 0.08)
    img[mortar] = palette(rng, 1)[0] * 0.8
    img = img * (0.8 + 0.35 * fbm(rng, h, w, 6)[..., None])
    cy, cx = rng.uniform(0, 1, 2)
    light = 1.1 - 0.6 * np.sqrt((yy - cy) ** 2 + (xx - cx) ** 2)
    return cv2.GaussianBlur(img * light[..., None], (0, 0), rng.uniform(0.5, 4))


def bg_landscape(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Sky, ridges fading with distance and a foreground of foliage noise, out of focus."""
    yy, xx = grid(h, w)
    sky = ramp(np.clip(yy * 1.4, 0, 1), palette(rng, 2) * 0.5 + np.array([0.35, 0.45, 0.55]))
    img = sky
    haze = sky[0, 0]
    ground = palette(rng, 1)[0] * 0.6
    layers = int(rng.integers(2, 5))
    for k in range(layers):
        ridge = 0.3 + 0.13 * k + 0.2 * (fbm(rng, 1, w, 5, 3, 0.5)[0] - 0.5) * (layers - k) / layers
        depth = (k + 1) / layers
        colour = haze * (1 - depth) + ground * rng.uniform(0.6, 1.2) * depth
        texture = 0.8 + 0.4 * fbm(rng, h, w, 5, 6)[..., None]
        img = np.where((yy > ridge[None, :])[..., None], colour * texture, img)
    return cv2.GaussianBlur(img.astype(np.float32), (0, 0), rng.uniform(1, 10))


def bg_interior(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A room in one-point perspective: walls, floor, ceiling, a window, shelves, frames and a lamp."""
    img = np.zeros((h, w, 3), np.float32)
    vx, vy = rng.uniform(0.3, 0.7) * w, rng.uniform(0.3, 0.5) * h
    bw2, bh2 = rng.uniform(0.2, 0.35) * w, rng.uniform(0.18, 0.32) * h
    back = np.array([[vx - bw2, vy - bh2], [vx + bw2, vy - bh2], [vx + bw2, vy + bh2], [vx - bw2, vy + bh2]])
    corners = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float64)
    wall = palette(rng, 1)[0] * 0.7 + 0.25
    floor = palette(rng, 1)[0] * 0.6
    faces = [(corners[[0, 1]], back[[1, 0]], wall * 1.05),  # ceiling
             (corners[[1, 2]], back[[2, 1]], wall * 0.8),  # right wall
             (corners[[2, 3]], back[[3, 2]], floor),  # floor
             (corners[[3, 0]], back[[0, 3]], wall * 0.9)]  # left wall
    for (a, b), (c, d), colour in faces:
        cv2.fillConvexPoly(img, np.round([a, b, c, d]).astype(np.int32), colour.tolist(), cv2.LINE_AA)
    cv2.fillConvexPoly(img, np.round(back).astype(np.int32), (wall * rng.uniform(0.85, 1.1)).tolist(), cv2.LINE_AA)
    for _ in range(int(rng.integers(6, 20))):  # floor boards towards the vanishing point
        x = rng.uniform(-0.5, 1.5) * w
        cv2.line(img, (int(x), h), (int(vx + (x - vx) * bh2 / max(1, h - vy)), int(vy + bh2)),
                 (floor * 0.7).tolist(), 2, cv2.LINE_AA)
    bx0, by0 = max(0.0, back[0, 0]), max(0.0, back[0, 1])
    bx1, by1 = min(w - 1.0, back[2, 0]), min(h - 1.0, back[2, 1])
    for _ in range(int(rng.integers(1, 4))):  # windows, frames, shelves on the back wall
        kind = rng.choice(["window", "frame", "shelf", "door"])
        x0 = rng.uniform(bx0, bx1 - 20); x1 = min(bx1, x0 + rng.uniform(0.15, 0.5) * (bx1 - bx0))
        y0 = rng.uniform(by0, by1 - 20); y1 = min(by1, y0 + rng.uniform(0.2, 0.6) * (by1 - by0))
        p0, p1 = (int(x0), int(y0)), (int(x1), int(y1))
        if kind == "window":
            sky = bg_gradient(rng, max(2, p1[1] - p0[1]), max(2, p1[0] - p0[0])) * 0.4 + 0.6
            img[p0[1]:p1[1], p0[0]:p1[0]] = sky[: p1[1] - p0[1], : p1[0] - p0[0]]
            cv2.rectangle(img, p0, p1, (wall * 0.5).tolist(), 3)
        elif kind == "frame":
            art = bg_clouds(rng, max(2, p1[1] - p0[1]), max(2, p1[0] - p0[0]))
            img[p0[1]:p1[1], p0[0]:p1[0]] = art[: p1[1] - p0[1], : p1[0] - p0[0]]
            cv2.rectangle(img, p0, p1, (palette(rng, 1)[0] * 0.4).tolist(), 4)
        elif kind == "door":
            cv2.rectangle(img, (p0[0], p0[1]), (p1[0], int(by1)), (palette(rng, 1)[0] * 0.7).tolist(), -1)
        else:
            for shelf_y in np.linspace(y0, y1, int(rng.integers(2, 5))):
                cv2.line(img, (int(x0), int(shelf_y)), (int(x1), int(shelf_y)), (floor * 0.8).tolist(), 4)
                x = x0
                while x < x1 - 8:
                    bw_ = rng.uniform(4, 14)
                    bh_ = rng.uniform(0.04, 0.09) * h
                    cv2.rectangle(img, (int(x), int(shelf_y - bh_)), (int(x + bw_), int(shelf_y)),
                                  palette(rng, 1)[0].tolist(), -1)
                    x += bw_ + rng.uniform(0, 3)
    if rng.random() < 0.6:  # a lamp glow
        glow = np.zeros((h, w), np.float32)
        cv2.circle(glow, (int(rng.uniform(0, w)), int(rng.uniform(0, vy))), int(0.04 * w), 1.0, -1)
        img += cv2.GaussianBlur(glow, (0, 0), 0.06 * w)[..., None] * np.array([1.0, 0.85, 0.6]) * rng.uniform(0.3, 0.9)
    img *= 0.9 + 0.2 * fbm(rng, h, w, 5)[..., None]
    return cv2.GaussianBlur(img, (0, 0), rng.uniform(0.8, 6))


PROCEDURAL: dict[str, Callable[[np.random.Generator, int, int], np.ndarray]] = {
    "gradient": bg_gradient, "clouds": bg_clouds, "bokeh": bg_bokeh, "stripes": bg_stripes,
    "mosaic": bg_mosaic, "wall": bg_wall, "landscape": bg_landscape, "interior": bg_interior,
}


def procedural_backgrounds(count: int, seed: int) -> list[Background]:
    """``count`` rendered backgrounds, the kinds taken in turn, each from its own seeded generator."""
    out = []
    kinds = list(PROCEDURAL)
    for i in progress(range(count), "  rendering backgrounds"):
        kind = kinds[i % len(kinds)]
        rng = np.random.default_rng([seed, 19, i])
        h, w = [(720, 1280), (1280, 720), (768, 1024), (1024, 768), (960, 960)][int(rng.integers(5))]
        img = PROCEDURAL[kind](rng, h, w)
        img = img + rng.normal(0, rng.uniform(0.002, 0.015), img.shape).astype(np.float32)  # sensor grain
        out.append(Background(f"procedural_{kind}_{i:03d}", to_u8(img), f"procedural ({kind})",
                              "none needed (rendered by this script)",
                              f"{PROCEDURAL[kind].__doc__.splitlines()[0]} seed [{seed}, 19, {i}]"))
    return out


def near_duplicates(backgrounds: list[Background], tol: float = 3.0) -> list[tuple[str, str]]:
    """Pairs whose 16x16 thumbnails differ by less than ``tol`` grey levels on average (should be none)."""
    small = [cv2.resize(b.rgb, (16, 16), interpolation=cv2.INTER_AREA) for b in backgrounds]
    thumbs = np.stack(small).astype(np.float32)
    flat = thumbs.reshape(len(thumbs), -1)
    pairs = []
    for i in range(len(flat)):
        d = np.abs(flat[i + 1:] - flat[i]).mean(axis=1)
        pairs += [(backgrounds[i].name, backgrounds[i + 1 + j].name) for j in np.flatnonzero(d < tol)]
    return pairs


def write_backgrounds(out: Path, backgrounds: list[Background]) -> dict:
    """Write OUT/bg/*.jpg and OUT/bg/SOURCES.md; return the manifest part."""
    bg_dir = out / "bg"
    for old in bg_dir.glob("*.jpg"):
        old.unlink()
    entries = []
    for b in progress(backgrounds, "  writing backgrounds"):
        img = fit_side(b.rgb, 1280)
        write_rgb(bg_dir / f"{b.name}.jpg", img, 92)
        entries.append({"file": f"{b.name}.jpg", "source": b.source, "licence": b.licence, "detail": b.detail,
                        "size": [int(img.shape[1]), int(img.shape[0])]})
    by_source: dict[str, int] = {}
    for e in entries:
        by_source[e["source"]] = by_source.get(e["source"], 0) + 1
    lines = ["# Backgrounds: sources and licences", "",
             "Made by scripts/build_extra_data.py. Attribution for anything that ships: "
             "\"Intel IoT DevKit sample-videos, CC BY 4.0\" (room_plate_*); openpeople (MIT, Prompt Haus) "
             "for openpeople_*; scikit-image sample data (CC0 / public domain as listed) for skimage_*.", "",
             "| source | count |", "|---|---|"]
    lines += [f"| {s} | {n} |" for s, n in sorted(by_source.items())]
    lines += ["", "| file | source | licence | detail |", "|---|---|---|---|"]
    lines += [f"| {e['file']} | {e['source']} | {e['licence']} | {e['detail']} |" for e in entries]
    write_bytes_atomic(bg_dir / "SOURCES.md", ("\n".join(lines) + "\n").encode())
    return {"count": len(entries), "by_source": by_source, "files": entries}


def build_backgrounds(out: Path, openpeople: PackageFiles | None, skimage: PackageFiles | None,
                      segmenter: ReferenceSegmenter, args: argparse.Namespace) -> dict:
    data = args.shared / "data"
    backgrounds = skimage_backgrounds(skimage, args.seed)
    if openpeople is not None:
        backgrounds += amateur_backgrounds(openpeople, segmenter)
    backgrounds += room_plates(data / "videos" / "one-by-one-person-detection.mp4", segmenter, args.seed)
    backgrounds += shared_variants(data / "backgrounds", args.seed)
    # whole room plates from different times can look alike: keep the first of any near-duplicate pair
    twins = {b for _, b in near_duplicates(backgrounds)}
    if twins:
        print(f"  dropped near-duplicates: {sorted(twins)}")
    backgrounds = [b for b in backgrounds if b.name not in twins]
    n_proc = max(args.procedural, args.min_backgrounds - len(backgrounds))
    backgrounds += procedural_backgrounds(n_proc, args.seed)
    dups = near_duplicates(backgrounds)
    if dups:
        print(f"  near-duplicate backgrounds: {dups}")
    part = write_backgrounds(out, backgrounds)
    part["near_duplicates"] = dups
    return part


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    parser.add_argument("-o", "--output", type=Path, default=Path("runs/data-extra"))
    parser.add_argument("--openpeople", type=Path, help="openpeople wheel or folder (default: the installed package)")
    parser.add_argument("--skimage", type=Path, help="scikit-image wheel or folder (default: the installed package)")
    parser.add_argument("--max-side", type=int, default=800, help="long side of the labelled pictures")
    parser.add_argument("--emotions-per-person", type=int, default=6,
                        help="emotion-sheet panels used per person (of 16)")
    parser.add_argument("--procedural", type=int, default=150, help="at least this many procedural backgrounds")
    parser.add_argument("--min-backgrounds", type=int, default=220, help="more procedural ones if needed to reach this")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-people", action="store_true")
    parser.add_argument("--skip-backgrounds", action="store_true")
    parser.add_argument("--force", action="store_true", help="relabel pictures whose alpha already exists")
    parser.add_argument("--only", help="comma-separated openpeople ids to label (a quick look), e.g. P001,P002")
    args = parser.parse_args()
    out = args.output
    model = need_path(args.shared / "models" / "selfie_segmentation.onnx", "the reference model, --shared", "file")
    if not args.skip_backgrounds:
        need_path(args.shared / "data" / "videos" / "one-by-one-person-detection.mp4", "the room video", "file")
        need_path(args.shared / "data" / "backgrounds", "the shared backgrounds", "dir")
    openpeople = PackageFiles.locate("openpeople", args.openpeople)
    skimage = PackageFiles.locate("skimage", args.skimage)  # checked before any work too
    if openpeople is None and not args.skip_people:
        raise GreenlessError("openpeople not found: pip install openpeople (it is in the train extra), "
                             "or pip download --no-deps openpeople and pass --openpeople WHEEL")
    for sub in ("fg", "alpha", "image", "bg"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    segmenter = ReferenceSegmenter(model)
    manifest_path = out / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    args.previous = manifest.get("people", {})
    t0 = time.monotonic()
    if not args.skip_people:
        print(f"people from {openpeople.where}")
        manifest["people"] = build_people(openpeople, out, segmenter, args)
    if not args.skip_backgrounds:
        print("backgrounds")
        manifest["backgrounds"] = build_backgrounds(out, openpeople, skimage, segmenter, args)
    manifest["validation_only"] = "../shared/data/portraits is never read by this script"
    write_bytes_atomic(manifest_path, json.dumps(manifest, indent=1).encode())
    people = manifest.get("people", {})
    bgs = manifest.get("backgrounds", {})
    print(f"{people.get('people', 0)} people, {people.get('pictures', 0)} pictures, "
          f"{len(people.get('samples', []))} labelled samples ({len(people.get('rejected', {}))} rejected); "
          f"{bgs.get('count', 0)} backgrounds {bgs.get('by_source', {})} in {out} ({time.monotonic() - t0:.0f}s)")


if __name__ == "__main__":
    run_script(main)
