"""One set of flags: the options several commands share, the old spellings they replaced, and plain help.

Every option name means one thing in every command: ``-o/--out`` is the path written, ``--write`` is what is
written there (an output kind), ``-b/--background`` is what goes behind the person. ``SHARED`` says what each
name shared by two or more commands means (``tests/cli/test_cli_flags.py`` holds every command to it, and
``scripts/cli_reference.py`` prints it as docs/cli.md).

Old spellings that scripts may use still work for one release: ``translate`` rewrites them before parsing
and prints one note line on stderr for each. ``--output`` was the output kind in matte, video and batch and
the output path elsewhere; a path given to the kind's old name (``--output out.png``, rembg's habit) is one
error line naming ``-o``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, get_args, get_origin

import typer

from greenless.errors import GreenlessError
from greenless.pipeline.compose import OUTPUT_KINDS

#: What each option used by two or more commands means, the same everywhere.
SHARED: dict[str, str] = {
    "--out": "Where to write the result: a file (or a folder where the command writes several files).",
    "--write": f"What to write: {', '.join(OUTPUT_KINDS)}.",
    "--background": "What goes behind the person for composite output: a colour (white, #00ff00, 0,255,0) or an "
                    "image file (video and webcam also take a video file and blur).",
    "--model": "Packaged weights by name (modnet; modnet-paper once rebuilt: scripts/rebuild_weights.py).",
    "--weights": "A weights file instead of the packaged ones.",
    "--guide": "Semantic guide for guided weights: selfie or none.",
    "--refine": "Photo detail stage: band (re-solve the edge band at full resolution) or none (the network's matte).",
    "--engine": "Runtime: onnx or torch (bench --device: the engines to time).",
    "--ref-size": "Short side the network sees, rounded to its stride (64 for modnet: 288 is seen at 256).",
    "--threads": "CPU threads for the runtime.",
    "--max-pixels": "Refuse images larger than this many pixels.",
    "--temporal": "Frame-to-frame method for streams: prev-alpha, ofd or none.",
    "--no-ofd": "Turn off one-frame-delay flicker removal.",
    "--max-frames": "Stop after this many frames.",
    "--device": "The torch device to run on (cuda, cuda:1, cpu).",
    "--batch": "Frames per engine call (bench --device: the batch sizes to time).",
    "--batch-size": "Items per step (photos per actor call; crops per training step).",
    "--steps": "Training steps.",
    "--json": "Print one JSON object on stdout and nothing else.",
    "--markdown": "Print the table as GitHub Markdown.",
    "--help": "Show the command's help and exit.",
}

#: Old spellings kept for one release: command -> {old option: new option}.
RENAMED: dict[str, dict[str, str]] = {
    "matte": {"--output": "--write", "--bg": "--background"},
    "video": {"--output": "--write"},
    "batch": {"--output": "--write", "--bg": "--background"},
    "webcam": {"--output": "--out", "--device": "--camera"},
    "export": {"--output": "--out"},
    "convert": {"--output": "--out"},
    "adapt": {"--output": "--out"},
}


def out_option(help: str, required: bool = False) -> Any:
    """``-o/--out PATH``: where the command writes."""
    return typer.Option(... if required else None, "-o", "--out", metavar="PATH", help=help)


def write_option(default: str, help: str = "") -> Any:
    """``--write KIND``: which output kind the command writes."""
    return typer.Option(default, "--write", case_sensitive=False, help=help or
                        "What to write: rgba cut-out, alpha (8-bit grey), foreground colours, or composite.")


def background_option(default: str | None, help: str) -> Any:
    """``-b/--background SPEC``: a colour or an image (video and webcam: also a video or blur)."""
    return typer.Option(default, "-b", "--background", metavar="BACKGROUND", help=help)


def note(message: str) -> None:
    """One ``greenless: note: ...`` line on stderr."""
    print(f"greenless: note: {message}", file=sys.stderr, flush=True)


def translate(argv: list[str]) -> list[str]:
    """``argv`` with the old spellings of ``RENAMED`` replaced by the new ones, one note each on stderr.

    Only the command's options are looked at (up to a ``--``); a value given to the old kind option
    ``--output`` that is no output kind is refused with a hint naming ``-o``.
    """
    command = next((a for a in argv if not a.startswith("-")), None)
    renames = RENAMED.get(command or "", {})
    if not renames:
        return list(argv)
    result: list[str] = []
    noted: set[str] = set()
    for i, token in enumerate(argv):
        if token == "--":
            return result + argv[i:]
        name, eq, value = token.partition("=") if token.startswith("--") else (token, "", "")
        new = renames.get(name)
        if new is None:
            result.append(token)
            continue
        if new == "--write":
            given = value if eq else (argv[i + 1] if i + 1 < len(argv) else None)
            if given is not None and given.lower() not in OUTPUT_KINDS:
                raise GreenlessError(f"--output {given}: not an output kind ({', '.join(OUTPUT_KINDS)}); to name "
                                     f"the output file use -o {given}")
        if name not in noted:
            noted.add(name)
            note(f"{command} {name} is now {new}; the old spelling goes in the next release")
        result.append(new + eq + value)
    return result


def _plain_type(annotation: Any) -> str:
    """PATH, INTEGER, FLOAT or TEXT for an option's Python type (a list's element type for repeated options)."""
    if get_origin(annotation) is list:
        annotation = get_args(annotation)[0]
    for kind, name in ((Path, "PATH"), (bool, ""), (int, "INTEGER"), (float, "FLOAT")):
        if isinstance(annotation, type) and issubclass(annotation, kind):
            return name
    return "TEXT"


def plain_metavar(param: Any) -> str | None:
    """The metavar help shows for ``param``: nothing for a flag, the choices, or PATH/INTEGER/FLOAT/TEXT.

    Recent Typer labels values ``<bool>``, ``<int range>`` or ``<list[str]>``; help shows plain words instead.
    """
    if getattr(param, "is_flag", False):
        return ""
    desc = getattr(param, "type_descriptor", None)  # Typer >= 0.17; older ones keep click's own metavars
    if desc is None:
        return param.metavar
    if desc.is_choice:
        return "|".join(str(getattr(c, "value", c)) for c in desc.choices)
    return _plain_type(desc.annotation)


def _plain_flag(make_option: Any) -> Any:
    """``make_option`` (click's ``get_help_option``) whose option shows no metavar, as every flag."""

    def get_help_option(ctx: Any) -> Any:
        option = make_option(ctx)
        if option is not None:
            option.metavar = ""
        return option

    return get_help_option


def plain_help(group: Any) -> Any:
    """Give every option of every command of the click ``group`` a plain metavar (see ``plain_metavar``);
    arguments show their name only. Returns ``group``."""
    for command in (group, *group.commands.values()):
        command.get_help_option = _plain_flag(command.get_help_option)  # click adds --help when help is asked
        for param in command.params:
            if param.param_type_name == "argument":
                param.metavar = param.metavar or param.name.upper()
                param.display_type_rich = lambda ctx: None  # the name column already says what it is
            elif param.metavar is None or getattr(param, "is_flag", False):
                param.metavar = plain_metavar(param)
    return group
