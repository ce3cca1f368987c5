"""One set of flags: each option name means one thing in every command, help shows plain metavars, docs/cli.md
is what ``scripts/cli_reference.py`` writes, and the old spellings still work with one note line."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import REPO, load_script, run_main
from greenless.cli import command_group
from greenless.cli.flags import RENAMED, SHARED


def _reference_script():
    return load_script("cli_reference")


def _options() -> dict[str, dict[str, object]]:
    """Every visible option: spelling -> {command: (long name, all spellings, metavar)}."""
    found: dict[str, dict[str, object]] = {}
    for name, command in command_group().commands.items():
        for param in command.params:
            if param.param_type_name != "option" or param.hidden:
                continue
            long = next(o for o in param.opts if o.startswith("--"))
            for spelling in (*param.opts, *param.secondary_opts):
                found.setdefault(spelling, {})[name] = (long, frozenset((*param.opts, *param.secondary_opts)),
                                                        param.metavar)
    return found


def test_each_option_name_means_one_thing_everywhere() -> None:
    """A spelling (long or short) is one option in every command that has it: the same long name, the same
    other spellings and the same kind of value; a name shared by two commands has one meaning in SHARED."""
    options = _options()
    for spelling, by_command in options.items():
        longs = {v[0] for v in by_command.values()}
        assert len(longs) == 1, f"{spelling} is {longs} depending on the command"
        spellings = {v[1] for v in by_command.values()}
        assert len(spellings) == 1, f"{spelling} is spelled {spellings} depending on the command"
        metavars = {v[2] for c, v in by_command.items() if not (spelling == "--engine" and c == "bench")}
        assert len(metavars) <= 1, f"{spelling} takes {metavars} depending on the command"
        if spelling.startswith("--") and len(by_command) > 1:
            assert spelling in SHARED or spelling.removeprefix("--no-") in {s.removeprefix("--") for s in SHARED}, (
                f"{spelling} is in {sorted(by_command)}: say what it means in flags.SHARED")
    for command, renames in RENAMED.items():
        for old in renames:  # an old spelling never comes back with another meaning in the same command
            assert command not in options.get(old, {}), f"{command} {old} is both deprecated and an option"
    assert {c for c in options["--out"]} >= {"matte", "video", "webcam", "batch", "export", "convert", "adapt"}
    assert {c for c in options["--write"]} == {"matte", "video", "batch"}
    assert {c for c in options["--background"]} == {"matte", "video", "webcam", "batch"}


@pytest.mark.parametrize("command", [None, "matte", "video", "webcam", "batch", "export", "convert", "serve", "eval",
                                     "bench", "train", "adapt"])
def test_help_shows_plain_metavars(command: str | None, capsys: pytest.CaptureFixture[str],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """No ``<bool>``, ``<int range>`` or ``<list[str]>`` labels: flags show nothing, values PATH, INTEGER, ..."""
    from greenless.cli import main

    monkeypatch.setenv("COLUMNS", "200")
    try:
        main([*([command] if command else []), "--help"])
    except SystemExit as stop:
        assert stop.code in (0, None)
    text = capsys.readouterr().out
    assert "--help" in text and "Usage: greenless" in text
    assert not re.search(r"<(bool|int|str|float|path|list)[^>]*>", text), text


def test_docs_cli_md_is_up_to_date() -> None:
    script = _reference_script()
    assert (REPO / "docs" / "cli.md").read_text(encoding="utf-8") == script.render(), (
        "docs/cli.md is out of date: run python scripts/cli_reference.py")
    table = script.render()
    for spelling in ("`-o`, `--out`", "`--write`", "`-b`, `--background`"):
        assert spelling in table


def test_old_spellings_work_with_one_note(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``matte --output alpha --bg ...`` (the kind and background's old names) still writes, with a note for each."""
    photo = tmp_path / "p.png"
    Image.fromarray(np.full((64, 48, 3), 200, np.uint8)).save(photo)
    out = tmp_path / "a.png"
    code, err = run_main(["matte", photo, "--output", "ALPHA", "-o", out, "--ref-size", "64"], capsys)
    assert code == 0, err
    assert Image.open(out).mode == "L"
    notes = [line for line in err.splitlines() if line.startswith("greenless: note:")]
    assert notes == ["greenless: note: matte --output is now --write; the old spelling goes in the next release"]
    code, err = run_main(["matte", photo, "--write=composite", "--bg=#00ff00", "-o", out, "--ref-size", "64"], capsys)
    assert code == 0, err
    assert "matte --bg is now --background" in err
    assert np.asarray(Image.open(out)).shape == (64, 48, 3)


def test_webcam_old_spellings_reach_the_new_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """webcam ``--device N`` and ``--output FILE`` are ``--camera`` and ``-o``: the camera index reaches the error."""
    code, err = run_main(["webcam", "--device", "57", "--no-window", "--output", tmp_path / "o.mp4"], capsys)
    assert code != 0
    assert "webcam --device is now --camera" in err and "webcam --output is now --out" in err
    assert "camera 57" in err
    assert not (tmp_path / "o.mp4").exists()


@pytest.mark.parametrize("command", ["matte", "video"])
def test_output_with_a_file_name_names_o(command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """rembg's ``--output out.png`` is one line that names ``-o``, and nothing is written."""
    code, err = run_main([command, tmp_path / "in.jpg", "--output", tmp_path / "out.png"], capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("greenless: error: --output ")
    assert f"use -o {tmp_path / 'out.png'}" in lines[0]
    assert not (tmp_path / "out.png").exists()


def test_arguments_after_double_dash_are_left_alone() -> None:
    from greenless.cli.flags import translate

    assert translate(["matte", "--", "--output"]) == ["matte", "--", "--output"]
    assert translate(["serve", "--output", "x"]) == ["serve", "--output", "x"]  # serve never had it: click says so
