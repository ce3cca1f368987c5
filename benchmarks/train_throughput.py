"""Training throughput: images/s and the share of each step spent waiting for data, per loader worker count.

Runs the real trainer (``greenless.train.supervised.train``) for a few steps at the given crop size and
batch on a small config built from a data folder (Composition-1K layout: ``fg/`` + ``alpha/``, ``bg/``,
optionally ``image/``), with the network of a recipe (``configs/modnet.toml`` by default; random weights,
speed does not depend on them). Each step's data wait and total time come from the run's ``log.jsonl``;
the first ``--warmup`` steps (worker start-up, first allocations) are left out. ``--data-only`` times the
loader alone: how many images/s the workers could feed a GPU that never waits.

    python benchmarks/train_throughput.py --size 512 --batch 2 --steps 6 --workers 0 1
    python benchmarks/train_throughput.py --size 512 --batch 32 --steps 60 --workers 8 14   # on a GPU machine

The goal on a GPU is a data wait under 10 % of each step.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from greenless.cli.script import need_path, progress, run_script  # noqa: E402


def bench_config(recipe: Path, data: Path, out_dir: Path, size: int, batch: int, steps: int, workers: int,
                 threads: int) -> Any:
    """A config training ``recipe``'s network on ``data`` for ``steps`` steps, no checkpoints or validation."""
    import tomllib

    from greenless.train.config import config_from_dict

    model = dict(tomllib.loads(recipe.read_text()).get("model", {}))
    model.update(pretrained=False, init_weights="")
    labelled = [str(data)] if (data / "image").is_dir() else []
    raw = {
        "model": model,
        "data": {"foregrounds": [str(data)], "backgrounds": [str(data / "bg")], "labelled": labelled,
                 "composites_per_fg": max(4, batch), "size": size},
        "train": {"steps": steps, "batch_size": batch, "warmup_steps": 0, "checkpoint_every": steps + 1,
                  "out_dir": str(out_dir), "num_workers": workers, "threads": threads},
    }
    return config_from_dict(raw)


def train_figures(cfg: Any, warmup: int) -> dict[str, float]:
    """Train ``cfg`` from scratch and read images/s and the data-wait shares from its log."""
    from greenless.train.supervised import throughput, train

    final = train(cfg, resume=False, progress=False)
    return throughput(final.parent / "log.jsonl", cfg.train.batch_size, warmup)


def loader_figures(cfg: Any, warmup: int) -> dict[str, float]:
    """Images/s the loader alone delivers (batches drawn back to back, nothing trained)."""
    import torch

    from greenless.train.supervised import build_dataset, make_loader

    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    batches = iter(make_loader(build_dataset(cfg), cfg, 0, cuda=torch.cuda.is_available()))
    times = []
    for _ in range(cfg.train.steps):
        start = time.perf_counter()
        next(batches)
        times.append(time.perf_counter() - start)
    del batches
    timed = times[warmup:]
    return {"steps": len(timed), "images_per_s": cfg.train.batch_size * len(timed) / sum(timed)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=REPO / "configs" / "modnet.toml", help="recipe of the network")
    parser.add_argument("--data", type=Path, default=REPO / "tests" / "fixtures" / "tiny_set")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--warmup", type=int, default=2, help="first steps left out of the figures")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--threads", type=int, default=0, help="torch threads of the training process (0: default)")
    parser.add_argument("--data-only", action="store_true", help="time the loader alone")
    args = parser.parse_args()
    if args.steps <= args.warmup:
        parser.error("--steps must be larger than --warmup")
    need_path(args.config, "the recipe, --config", "file")
    need_path(args.data / "bg", "the backgrounds of --data, which holds fg/, alpha/ and bg/", "dir")

    import torch

    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"CPU ({torch.get_num_threads()} threads)"
    print(f"{'loader only' if args.data_only else 'training'}: {args.config.name} network, {args.size} px, "
          f"batch {args.batch}, {args.steps} steps ({args.warmup} warm-up left out), {device}")
    if args.data_only:
        print("| workers | images/s |")
        print("|---|---|")
    else:
        print("| workers | images/s | step s (median) | data wait (median) | data wait (mean) |")
        print("|---|---|---|---|---|")
    for workers in progress(args.workers, "worker counts"):
        with tempfile.TemporaryDirectory() as tmp:
            cfg = bench_config(args.config, args.data, Path(tmp) / "run", args.size, args.batch, args.steps, workers,
                               args.threads)
            if args.data_only:
                f = loader_figures(cfg, args.warmup)
                print(f"| {workers} | {f['images_per_s']:.1f} |", flush=True)
            else:
                f = train_figures(cfg, args.warmup)
                print(f"| {workers} | {f['images_per_s']:.2f} | {f['step_s_median']:.3f} | "
                      f"{100 * f['data_wait_median']:.1f} % | {100 * f['data_wait_mean']:.1f} % |", flush=True)


if __name__ == "__main__":
    run_script(main)
