"""Rebuild a weight set with one command: data building, warm start, training, shipping (greenless.train.recipes).

    python scripts/rebuild_weights.py modnet              # the packaged default, from ../shared
    python scripts/rebuild_weights.py modnet-paper        # ships as a card only: writes its weights beside the card
    python scripts/rebuild_weights.py modnet --dry-run    # the stages, their commands, and which are done
    python scripts/rebuild_weights.py modnet --from-scratch   # rebuild the warm starts too (modnet-paper first)
    python scripts/rebuild_weights.py modnet-self         # self-training (issue 17): teacher labels, training;
                                                          # an experiment: its weights stay in runs/, not shipped

Each stage is skipped when its output is there, so a stopped rebuild (Ctrl-C, a crash, a reboot) continues
where it stopped, and training resumes from its last checkpoint. One line per stage on stderr, then the
stage's own progress. Needs the train extra (``pip install -e '.[train,video]'``), the shared data (--shared)
and, for the warm start without --from-scratch, a git clone with history.

``--tiny`` runs the same stages on a few samples and 2 steps each into --work (data from --shared, weights into
--out): a check that the chain runs end to end (the test suite runs it), not weights to ship.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from gpu_train import write_toml  # noqa: E402  (scripts/ is on the path: this script's own folder)

from greenless.cli.script import need_path, run_script  # noqa: E402
from greenless.errors import GreenlessError  # noqa: E402
from greenless.train.config import TrainConfig, load_config  # noqa: E402
from greenless.train.recipes import BUILDERS, RECIPES, TEACHERS, Recipe, recipe  # noqa: E402

RUNS, WEIGHTS, SHARED = REPO / "runs", REPO / "src" / "greenless" / "weights", REPO.parent / "shared"
#: --tiny: settings that make every stage take seconds (a check of the chain, not a recipe).
TINY = {"data": {"size": 64, "composites_per_fg": 1, "val_ref_size": 64},
        "train": {"batch_size": 2, "checkpoint_every": 1, "val_every": 0, "threads": 1, "num_workers": 0,
                  "warmup_steps": 0}}


class Rebuild:
    """The stages of one rebuild (see the module docstring); ``run`` does them, ``dry`` only says them."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.work, self.out, self.shared = args.work.resolve(), args.out.resolve(), args.shared.resolve()
        self.tiny, self.from_scratch, self.dry = args.tiny, args.from_scratch, args.dry_run
        self.env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO / "src"),
                                                                              os.environ.get("PYTHONPATH")])))
        self.count = 0
        self.seen: set[Path] = set()  # data folders already in the plan (a warm start's recipe reads them too)
        self.scratch = tempfile.TemporaryDirectory(prefix="greenless-rebuild-")  # --dry-run's configs: nothing in --work

    # --- paths: a recipe's config names runs/, the weights folder and ../shared; --work/--out/--shared move them
    def moved(self, path: Path) -> Path:
        for default, given in ((RUNS, self.work), (WEIGHTS, self.out), (SHARED, self.shared)):
            if path == default or default in path.parents:
                return given / path.relative_to(default)
        return path

    def config(self, r: Recipe) -> Path:
        """The config to train: the recipe's own file, or (moved paths, --tiny) a copy under --work/configs."""
        source = REPO / r.config
        if not self.tiny and (self.work, self.out, self.shared) == (RUNS, WEIGHTS, SHARED):
            return source
        raw = tomllib.loads(source.read_text())

        def move(value: str) -> str:
            return str(self.moved((source.parent / value).resolve())) if value else value

        for key in ("foregrounds", "backgrounds", "labelled"):
            raw["data"][key] = [move(v) for v in raw["data"].get(key, [])]
        raw["data"]["val"] = move(raw["data"].get("val", ""))
        raw["model"]["init_weights"] = move(raw["model"].get("init_weights", ""))
        raw["train"]["out_dir"] = move(raw["train"]["out_dir"])
        if self.tiny:
            for section, values in TINY.items():
                raw[section].update(values)
        path = (Path(self.scratch.name) if self.dry else self.work / "configs") / f"{r.name}.toml"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_toml(raw, path)
        return path

    def loaded(self, r: Recipe) -> TrainConfig:
        """The recipe's config as training will read it (checked: a bad value is one error line)."""
        return load_config(self.config(r))

    # --- the stages -------------------------------------------------------------------------------------------
    def say(self, what: str, done: bool, command: list[str] | str = "") -> None:
        self.count += 1
        shown = command if isinstance(command, str) else " ".join(str(c) for c in command)
        state = "done" if done else ("to run" if self.dry else "running")
        print(f"[{self.count}] {what}: {state}" + (f": {shown}" if shown else ""), file=sys.stderr, flush=True)

    def call(self, what: str, command: list[str]) -> None:
        code = subprocess.run([str(c) for c in command], cwd=REPO, env=self.env).returncode
        if code:
            raise GreenlessError(f"{what} failed (exit {code}); fix it and run this command again to continue")

    def tops(self, values: list[str], cfg: TrainConfig) -> list[str]:
        """The folders right under the work folder that these config paths (resolved like ``cfg``'s) lie in."""
        paths = [cfg.resolve(value).resolve() for value in values]
        return sorted({p.relative_to(self.work).parts[0] for p in paths if self.work in p.parents})

    def make_folder(self, top: str, what: str, command: list[Any]) -> None:
        """Run ``command`` to make ``runs/top`` unless this rebuild already planned it or its manifest says done."""
        folder = self.work / top
        if folder in self.seen:
            return
        self.seen.add(folder)
        done = (folder / "manifest.json").is_file()
        self.say(f"{what} runs/{top}", done, command)
        if not done and not self.dry:
            self.call(f"making runs/{top}", command)

    def data(self, r: Recipe) -> None:
        """Build each data folder the config reads (greenless.train.recipes.BUILDERS); for a teacher's folder,
        the folders it re-labels."""
        cfg = self.loaded(r)
        read = self.tops([*cfg.data.foregrounds, *cfg.data.backgrounds, *cfg.data.labelled], cfg)
        for top in sorted({s for t in read for s in (TEACHERS[t][1] if t in TEACHERS else (t,))}):
            if top not in BUILDERS:
                raise GreenlessError(f"{r.config}: no builder for the data folder runs/{top} (greenless.train.recipes)")
            script, tiny = BUILDERS[top]
            self.make_folder(top, "data", [sys.executable, REPO / script, "--shared", self.shared, "-o", self.work / top,
                                           *(tiny if self.tiny else ())])

    def warm_start(self, r: Recipe) -> None:
        """The config's init_weights: there already, from git (the exact bytes), or rebuilt by its recipe."""
        cfg = self.loaded(r)
        if not cfg.model.init_weights:
            return
        target = cfg.resolve(cfg.model.init_weights).resolve()
        if target.is_file():
            self.say(f"warm start {target.name}", True)
            return
        blob = r.warm_start_git if not self.from_scratch else None
        if blob and subprocess.run(["git", "cat-file", "-e", blob], cwd=REPO, capture_output=True).returncode == 0:
            self.say(f"warm start {target.name} from git", False, f"git show {blob}")
            if not self.dry:
                data = subprocess.run(["git", "show", blob], cwd=REPO, capture_output=True, check=True).stdout
                target.parent.mkdir(parents=True, exist_ok=True)
                tmp = target.with_name(target.name + ".part")
                tmp.write_bytes(data)
                tmp.replace(target)
            return
        if r.warm_start is None:
            raise GreenlessError(f"{target}: the warm start is missing and no recipe rebuilds it")
        self.say(f"warm start {target.name}: rebuild {r.warm_start}", False)
        source = recipe(r.warm_start)
        final = self.build(source)
        if self.dry:
            return
        if source.ship:  # shipped: the shipped (fp16) file is the warm start, as it was
            need_path(target, f"the warm start {r.warm_start}, as shipped", "file")
            return
        from greenless.model.checkpoint import load_weights, save_weights

        model, card = load_weights(final)
        card["name"] = f"greenless-{source.name} (rebuilt)"
        save_weights(model, target, card, half=True)  # as shipped: the fp16-rounded numbers

    def teacher(self, r: Recipe) -> None:
        """Each TEACHERS folder the config reads: its sources re-labelled by the photo default on the warm start."""
        cfg = self.loaded(r)
        weights = cfg.resolve(cfg.model.init_weights).resolve()
        for top in self.tops([*cfg.data.foregrounds, *cfg.data.labelled], cfg):
            if top in TEACHERS:
                script, sources, ref_size = TEACHERS[top]
                self.make_folder(top, "teacher labels", [
                    sys.executable, REPO / script, *(self.work / s for s in sources), "-o", self.work / top,
                    "--weights", weights, "--ref-size", str(64 if self.tiny else ref_size)])

    def train(self, r: Recipe) -> Path:
        cfg = self.loaded(r)
        out_dir = cfg.resolve(cfg.train.out_dir).resolve()
        targets: list[int | None] = list(r.steps) or [None]
        if self.tiny:
            targets = [1, 2] if r.steps else [2]
        for target in targets:
            marker = out_dir / f".rebuild-{target or 'run'}.done"
            command = [sys.executable, "-m", "greenless", "train", self.config(r)]
            command += ["--steps", str(target)] if target is not None else []
            done = marker.is_file() and (out_dir / "final.safetensors").is_file()
            self.say(f"train {r.name}" + (f" to step {target}" if target else ""), done, command)
            if not done and not self.dry:
                self.call(f"training {r.name}", command)
                marker.touch()
        return out_dir / "final.safetensors"

    def ship(self, r: Recipe, final: Path) -> None:
        assert r.ship is not None
        ship = list(r.ship)
        if self.tiny:  # validate at 64 px
            ship = [("64" if a.isdigit() else a) for a in ship]
        command = [sys.executable, REPO / "scripts" / "ship_weights.py", final, "--name", r.name, *ship,
                   "--out", self.out, "--portraits", self.shared / "data" / "portraits"]
        marker = final.parent / f".rebuild-shipped-{r.name}"
        done = marker.is_file() and (self.out / f"{r.name}.onnx").is_file()
        self.say(f"ship {r.name} into {self.out}", done, command)
        if not done and not self.dry:
            self.call(f"shipping {r.name}", command)
            marker.touch()

    def build(self, r: Recipe) -> Path:
        """All stages of ``r`` (its warm start's recipe first when that must be rebuilt); returns its final weights."""
        self.data(r)
        self.warm_start(r)
        self.teacher(r)
        final = self.train(r)
        if r.ship:
            self.ship(r, final)
        return final


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", help=f"The weight set: {', '.join(RECIPES)}.")
    parser.add_argument("--work", type=Path, default=RUNS, help="Where data, warm starts and runs go (default: runs/).")
    parser.add_argument("--out", type=Path, default=WEIGHTS, help="Where the set ships (default: the package's weights).")
    parser.add_argument("--shared", type=Path, default=SHARED, help="The shared data and models (default: ../shared).")
    parser.add_argument("--from-scratch", action="store_true", help="Rebuild the warm starts too instead of taking "
                        "the exact bytes the shipped runs started from out of git.")
    parser.add_argument("--dry-run", action="store_true", help="Say the stages and which are done; run nothing.")
    parser.add_argument("--tiny", action="store_true", help="A few samples and 2 steps a run: checks the chain.")
    args = parser.parse_args()
    target = recipe(args.name)
    starts = [r.name for r in RECIPES.values() if r.warm_start == args.name]
    if target.ship is None and starts:
        raise GreenlessError(f"{args.name} is not a shipped set (it is a warm start); rebuild the set it starts: "
                             f"{', '.join(starts)}")
    need_path(args.shared / "data", "the shared data, --shared", "dir")
    need_path(args.shared / "models" / "selfie_segmentation.onnx", "the reference model in --shared", "file")
    final = Rebuild(args).build(target)
    if not args.dry_run:  # an experiment (no ship stage) leaves its weights where training wrote them
        where = args.out.resolve() if target.ship else final
        print(f"rebuilt {args.name} into {where}", file=sys.stderr)


if __name__ == "__main__":
    run_script(main)
