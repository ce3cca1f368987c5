"""Train on a borrowed GPU machine: pack what a run needs, train there for N minutes, bring the weights back.

The GPU machine gets a copy of the working tree (tracked and untracked-not-ignored files) plus up to 64 MiB
of ignored paths named in ``carry``; nothing else of this machine reaches it, and it can send back at most
8 files of 16 MiB. So a run goes in five steps, all printed by ``prepare``:

1. ``prepare CONFIG``   copy the training data, the validation folder and the init weights into the
                        ignored ``work/gpu/`` with a config rewritten to point at them; check the size;
2. ``stash-weights``    move the packaged weights (75 MB of tracked files) out of the tree, so the tree
                        that travels fits in the transfer limit;
3. the device call:     ``python3 scripts/gpu_train.py train work/gpu/config.toml --minutes N`` with
                        ``carry = ["work/gpu"]``: trains, then writes fp16 weights (in parts of at most
                        15 MiB), the card, the log and a manifest to ``$OUT``;
4. ``restore-weights``  put the packaged weights back (verified against their recorded SHA-256, or, if a
                        stashed copy is lost, rewritten from git's index);
5. ``collect DIR``      reassemble the parts into ``runs/NAME/final.safetensors`` (SHA-256 checked).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from greenless.cli.script import need_path, run_script  # noqa: E402

DEST = Path("work/gpu")  # under the ignored /work/, relative to the repository root
STASH = Path("work/weights-stash")
WEIGHTS = Path("src/greenless/weights")
PART_BYTES = 15 * 2**20  # files coming back from $OUT are limited to 16 MiB each
CARRY_LIMIT = 60 * 2**20  # the transfer limit is 64 MiB; keep a margin
MANIFEST = "manifest.json"


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(2**20), b""):
            digest.update(block)
    return digest.hexdigest()


def folder_bytes(path: Path) -> int:
    """Total size of the files under ``path`` (a file's own size for a file)."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def travelling_bytes(repo: Path) -> int:
    """Bytes of the working tree that travel anyway (tracked + untracked-not-ignored), packaged weights excluded."""
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=repo,
                         capture_output=True, check=True).stdout.decode()
    total = 0
    for name in filter(None, out.split("\0")):
        path = repo / name
        if path.is_file() and not path.is_symlink() and not Path(name).is_relative_to(WEIGHTS):
            total += path.stat().st_size
    return total


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} to TOML")


def write_toml(sections: dict[str, dict[str, Any]], path: Path) -> None:
    """Write a config's sections (flat keys of str, number, bool or list) as TOML; None is "not set" (TOML
    has no null), so it is left out and the setting keeps its default."""
    lines = []
    for name, values in sections.items():
        lines.append(f"[{name}]")
        lines += [f"{key} = {_toml_value(value)}" for key, value in values.items() if value is not None]
        lines.append("")
    path.write_text("\n".join(lines))


def _inside(path: Path, folder: Path, what: str) -> str:
    """``path`` relative to ``folder`` as the copied config will name it (``data/...``)."""
    path, folder = path.resolve(), folder.resolve()
    if not path.is_relative_to(folder):
        raise SystemExit(f"{what} {path} is not inside the data folder {folder}: pass --data with a folder holding it")
    rel = path.relative_to(folder).as_posix()
    return "data" if rel == "." else f"data/{rel}"


def webp_lossless(folder: Path) -> tuple[int, int]:
    """Re-encode the 8-bit colour PNGs under ``folder`` as lossless WebP (about half the bytes), in place.

    Each file is decoded again and compared pixel by pixel before the PNG goes; anything else (alphas,
    16-bit, JPEG) stays as it is. The loaders pair files by stem, so nothing else changes. Returns the
    bytes of the converted files before and after.
    """
    import cv2
    import numpy as np

    before = after = 0
    for path in sorted(folder.rglob("*.png")):
        image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if image is None or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            continue
        ok, encoded = cv2.imencode(".webp", image, [cv2.IMWRITE_WEBP_QUALITY, 101])  # > 100: lossless
        if not ok or not np.array_equal(cv2.imdecode(encoded, cv2.IMREAD_UNCHANGED), image):
            continue
        before += path.stat().st_size
        after += len(encoded)
        path.with_suffix(".webp").write_bytes(encoded.tobytes())
        path.unlink()
    return before, after


def prepare(config: Path, data: Path, dest: Path, val: Path | None = None, overrides: dict[str, Any] | None = None,
            repo: Path = REPO, webp: bool = True) -> dict[str, Any]:
    """Copy into ``dest`` what a training run needs and write ``dest/config.toml`` pointing at the copies.

    ``data`` must hold every folder the config trains on (foregrounds, backgrounds, labelled); the validation
    folder (``val`` or the config's) and the init weights are copied beside it. ``overrides`` are ``section.key``
    settings applied on top (num_workers, batch size, ...). Returns sizes and the files written; raises when
    the copy plus the tree that travels anyway would exceed ``CARRY_LIMIT``.
    """
    from greenless.train.config import load_config

    cfg = load_config(config, overrides)
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    sections = cfg.to_dict()
    d = sections["data"]
    d["foregrounds"] = [_inside(cfg.resolve(p), data, "foreground folder") for p in cfg.data.foregrounds]
    if any(cfg.resolve(p).is_file() for p in cfg.data.backgrounds):
        raise SystemExit("prepare copies background folders, not list files: put the backgrounds in a folder")
    d["backgrounds"] = [_inside(cfg.resolve(p), data, "background folder") for p in cfg.data.backgrounds]
    d["labelled"] = [_inside(cfg.resolve(p), data, "labelled folder") for p in cfg.data.labelled]
    shutil.copytree(data, dest / "data")
    png_bytes, webp_bytes = webp_lossless(dest / "data") if webp else (0, 0)
    val_src = val if val is not None else (cfg.resolve(cfg.data.val) if cfg.data.val else None)
    if val_src is not None:
        shutil.copytree(val_src, dest / "val")
        d["val"] = "val"
    if cfg.model.init_weights:
        init = cfg.resolve(cfg.model.init_weights)
        shutil.copy2(init, dest / init.name)
        sections["model"]["init_weights"] = init.name
    sections["train"]["out_dir"] = "out"
    write_toml(sections, dest / "config.toml")
    load_config(dest / "config.toml")  # the rewritten file must read back
    copied = folder_bytes(dest)
    tree = travelling_bytes(repo)
    if copied + tree > CARRY_LIMIT:
        raise SystemExit(f"{dest} holds {copied / 2**20:.1f} MiB and the tree {tree / 2**20:.1f} MiB: "
                         f"over the {CARRY_LIMIT / 2**20:.0f} MiB kept under the transfer limit")
    return {"dest": dest, "copied_bytes": copied, "tree_bytes": tree, "png_bytes": png_bytes, "webp_bytes": webp_bytes}


def stash_weights(repo: Path = REPO, stash: Path | None = None) -> list[str]:
    """Move the packaged weights out of the tree into ``stash`` (ignored, not carried), recording their SHA-256.

    Files already stashed by an earlier call that was never restored are kept (the manifest is merged), so
    calling it twice loses nothing.
    """
    stash = stash or repo / STASH
    stash.mkdir(parents=True, exist_ok=True)
    manifest_path = stash / MANIFEST
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    moved = []
    for path in sorted((repo / WEIGHTS).glob("*")):
        if not path.is_file():
            continue
        rel = path.relative_to(repo).as_posix()
        target = stash / path.name
        if target.exists() and sha256(target) != sha256(path):
            raise SystemExit(f"{target} already holds a different {path.name}: restore-weights first")
        manifest[rel] = sha256(path)
        manifest_path.write_text(json.dumps(manifest, indent=2))  # before the move: a crash loses nothing
        shutil.move(str(path), target)
        moved.append(rel)
    return moved


def restore_weights(repo: Path = REPO, stash: Path | None = None) -> list[str]:
    """Put every stashed weights file back and check it against its recorded SHA-256.

    A stashed copy that went missing or does not match is rewritten from git's index when git holds that
    file with the recorded content. The stash is removed only once everything is back; raises listing
    what could not be restored.
    """
    stash = stash or repo / STASH
    manifest_path = stash / MANIFEST
    if not manifest_path.is_file():
        return []
    manifest = json.loads(manifest_path.read_text())
    restored, failed = [], []
    for rel, digest in manifest.items():
        target, copy = repo / rel, stash / Path(rel).name
        if target.is_file() and sha256(target) == digest:
            copy.unlink(missing_ok=True)
            restored.append(rel)
            continue
        if copy.is_file() and sha256(copy) == digest:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(copy), target)
        else:
            blob = subprocess.run(["git", "cat-file", "blob", f":{rel}"], cwd=repo, capture_output=True)
            if blob.returncode != 0 or hashlib.sha256(blob.stdout).hexdigest() != digest:
                failed.append(rel)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(blob.stdout)
        restored.append(rel)
    if failed:
        raise SystemExit(f"could not restore {', '.join(failed)}: the stash in {stash} is kept")
    shutil.rmtree(stash)
    return restored


def split_file(path: Path, out_dir: Path, part_bytes: int = PART_BYTES) -> list[str]:
    """Copy ``path`` into ``out_dir`` whole, or as ``NAME.000``, ``NAME.001``... when larger than ``part_bytes``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    if path.stat().st_size <= part_bytes:
        shutil.copyfile(path, out_dir / path.name)
        return [path.name]
    names = []
    with path.open("rb") as handle:
        for index, block in enumerate(iter(lambda: handle.read(part_bytes), b"")):
            name = f"{path.name}.{index:03d}"
            (out_dir / name).write_bytes(block)
            names.append(name)
    return names


def export_run(final: Path, out_dir: Path, name: str, extra: dict[str, Any] | None = None,
               part_bytes: int = PART_BYTES) -> dict[str, Any]:
    """Write a run's weights as fp16 safetensors (split if needed), its card, log and a manifest into ``out_dir``."""
    import tempfile

    from greenless.model.checkpoint import card_path, load_weights, save_weights

    model, card = load_weights(final)
    with tempfile.TemporaryDirectory() as tmp:
        half = save_weights(model, Path(tmp) / f"{name}.safetensors", card, half=True)
        parts = split_file(half, out_dir, part_bytes)
        digest = sha256(half)
        shutil.copyfile(card_path(half), out_dir / f"{name}.json")
    log = final.parent / "log.jsonl"
    if log.is_file():
        shutil.copyfile(log, out_dir / "log.jsonl")
    manifest = {"name": name, "weights": f"{name}.safetensors", "sha256": digest, "parts": parts, **(extra or {})}
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=2))
    return manifest


def collect(files: Path, runs: Path, name: str | None = None) -> Path:
    """Reassemble what ``train`` wrote to $OUT into ``runs/NAME/final.safetensors`` (+ card and log)."""
    manifest = json.loads((files / MANIFEST).read_text())
    name = name or manifest["name"]
    out = runs / name
    out.mkdir(parents=True, exist_ok=True)
    final = out / "final.safetensors"
    tmp = final.with_name(final.name + ".tmp")
    with tmp.open("wb") as handle:
        for part in manifest["parts"]:
            handle.write((files / part).read_bytes())
    if sha256(tmp) != manifest["sha256"]:
        tmp.unlink()
        raise SystemExit(f"reassembled weights do not match the SHA-256 in {files / MANIFEST}")
    os.replace(tmp, final)
    card = files / f"{manifest['name']}.json"
    if card.is_file():
        shutil.copyfile(card, out / "final.json")
    for extra in ("log.jsonl", MANIFEST):
        if (files / extra).is_file():
            shutil.copyfile(files / extra, out / extra)
    return final


def run_training(config: Path, minutes: float, name: str, out: Path, overrides: dict[str, Any] | None = None,
                 progress: bool = True) -> dict[str, Any]:
    """Train ``config`` for ``minutes`` (fresh, in ``CONFIG_DIR/out/NAME``), then ``export_run`` into ``out``."""
    from greenless.train.config import load_config
    from greenless.train.supervised import throughput, train

    settings = {"train.minutes": minutes, "train.out_dir": str((config.parent / "out" / name).resolve()),
                **(overrides or {})}
    cfg = load_config(config, settings)
    final = train(cfg, resume=True, progress=progress)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    log = final.parent / "log.jsonl"
    timed = sum('"step_s"' in line for line in log.read_text().splitlines())
    speed = throughput(log, cfg.train.batch_size * world, warmup=min(5, max(0, timed - 1)))  # skip start-up steps
    return export_run(final, out, name, {"throughput": speed, "config": cfg.to_dict()})


def _environment() -> str:
    import torch

    lines = [f"torch {torch.__version__}, cuda {torch.cuda.is_available()}, {os.cpu_count()} CPUs"]
    if torch.cuda.is_available():
        lines.append(torch.cuda.get_device_name(0))
    if Path("/dev/shm").exists():
        usage = shutil.disk_usage("/dev/shm")
        lines.append(f"/dev/shm {usage.free / 2**30:.1f} GiB free (loader workers pass batches through it)")
    return "; ".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare", help="copy data, validation set, init weights and config into work/gpu/")
    p.add_argument("config", type=Path)
    p.add_argument("--data", type=Path, default=Path("runs/data"), help="folder holding all the training data")
    p.add_argument("--val", type=Path, default=None, help="validation folder (default: the config's [data] val)")
    p.add_argument("--dest", type=Path, default=DEST)
    p.add_argument("--name", default="gpu-run")
    p.add_argument("--minutes", type=float, default=6.0,
                   help="training budget the printed command asks for (a device command may run 10 minutes, "
                        "start-up, validation and export included)")
    p.add_argument("--num-workers", type=int, default=14, help="loader processes (the GPU machine has 16 cores)")
    p.add_argument("--batch-size", type=int, default=0)
    p.add_argument("--size", type=int, default=0, help="training crop size (default: the config's)")
    p.add_argument("--keep-png", action="store_true", help="copy PNGs as they are (no lossless WebP)")
    sub.add_parser("stash-weights", help=f"move {WEIGHTS}/* to {STASH}/ so they do not travel")
    sub.add_parser("restore-weights", help="put the stashed weights back (verified; git's copy if one is lost)")
    p = sub.add_parser("train", help="on the GPU machine: train for --minutes, write fp16 weights to $OUT")
    p.add_argument("config", type=Path)
    p.add_argument("--minutes", type=float, required=True)
    p.add_argument("--name", default="gpu-run")
    p.add_argument("--out", type=Path, default=None, help="default: $OUT")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (logs stay short)")
    p = sub.add_parser("collect", help="reassemble the files of a device call into runs/NAME/final.safetensors")
    p.add_argument("files", type=Path, help="the folder the device call's files were copied to (files_at)")
    p.add_argument("--name", default=None)
    p.add_argument("--runs", type=Path, default=Path("runs"))
    args = parser.parse_args(argv)

    if args.command in ("prepare", "train"):
        need_path(args.config, "the config", "file")
    if args.command == "prepare":
        need_path(args.data, "the training data, --data", "dir")  # before prepare() empties --dest
        if args.val is not None:
            need_path(args.val, "the validation folder, --val", "dir")
        # no checkpoints mid-run: last.pt never comes back from the device (only $OUT does)
        overrides: dict[str, Any] = {"train.num_workers": args.num_workers, "train.threads": 0,
                                     "train.checkpoint_every": 100_000}
        if args.batch_size:
            overrides["train.batch_size"] = args.batch_size
        if args.size:
            overrides["data.size"] = args.size
        info = prepare(args.config, args.data, args.dest, args.val, overrides, webp=not args.keep_png)
        dest = args.dest.resolve().relative_to(REPO) if args.dest.resolve().is_relative_to(REPO) else args.dest
        print(f"copied {info['copied_bytes'] / 2**20:.1f} MiB into {args.dest} (PNGs {info['png_bytes'] / 2**20:.1f} "
              f"-> {info['webp_bytes'] / 2**20:.1f} MiB as lossless WebP); the tree without the packaged weights "
              f"is {info['tree_bytes'] / 2**20:.1f} MiB")
        print("next:")
        print("  python scripts/gpu_train.py stash-weights")
        timeout = int(args.minutes * 60) + 150  # start-up, final validation and export
        if timeout > 600:
            print(f"warning: {args.minutes:g} minutes of training leave too little of a device command's 600 s")
        print(f"  device run, carry = {json.dumps([dest.as_posix()])}, timeout_s = {min(600, timeout)}:")
        print(f"    PYTHONUNBUFFERED=1 python3 scripts/gpu_train.py train {dest.as_posix()}/config.toml "
              f"--minutes {args.minutes:g} --name {args.name} --no-progress")
        print("  python scripts/gpu_train.py restore-weights")
        print(f"  python scripts/gpu_train.py collect FILES_AT --name {args.name}")
    elif args.command == "stash-weights":
        moved = stash_weights()
        print(f"moved {len(moved)} files to {STASH}/; run restore-weights after the device call")
    elif args.command == "restore-weights":
        restored = restore_weights()
        print(f"restored {len(restored)} files into {WEIGHTS}/" if restored else "nothing stashed")
    elif args.command == "train":
        out = args.out or Path(os.environ.get("OUT", ""))
        if not str(out):
            raise SystemExit("no --out and no $OUT")
        print(_environment(), flush=True)
        manifest = run_training(args.config, args.minutes, args.name, out, progress=not args.no_progress)
        print(json.dumps({"parts": manifest["parts"], "throughput": manifest["throughput"]}, indent=2))
    elif args.command == "collect":
        need_path(args.files, "the device call's files", "dir")
        final = collect(args.files, args.runs, args.name)
        manifest = json.loads((final.parent / MANIFEST).read_text())
        print(f"wrote {final}; throughput there: {json.dumps(manifest.get('throughput'))}")


if __name__ == "__main__":
    run_script(main)
