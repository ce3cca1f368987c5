"""The README and the docs pages run as pasted: every shell and Python block, the install hints, the docs site.

A block runs in a scratch folder laid out like the clone (``examples/`` copied; ``benchmarks/``, ``configs/``,
``scripts/`` and ``src/`` linked), where small fixtures carry the upper-case placeholder names the text uses
(``PHOTO.jpg``, ``PHOTOS/``, ``VIDEO.mp4``, ...), with ``greenless`` and ``python`` on the PATH meaning this
checkout. A block that needs what a test machine lacks has an HTML comment on the line above its fence,
``<!-- needs: REASON[, REASON] -->`` (a camera, a GPU, a running server, ``../shared``, a long run, ...), and
is skipped with that reason, so the skip list names every block that did not run.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures" / "data"
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
RUN_LANGS = {"bash": "bash", "sh": "bash", "shell": "bash", "python": "python"}
FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<lang>[\w+-]*)[ \t]*\n(?P<code>.*?)^(?P=indent)```[ \t]*$", re.M | re.S)
NEEDS = re.compile(r"<!--\s*needs:\s*(?P<needs>[^>]*?)\s*-->\s*$")


@dataclass(frozen=True)
class Block:
    page: str
    line: int
    lang: str
    code: str
    needs: str  # empty when the block runs in the suite


def blocks(path: Path) -> list[Block]:
    """Every fenced block of a Markdown page, with its language and the ``needs:`` comment just above it."""
    text = path.read_text()
    found = []
    for m in FENCE.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        before = text[:m.start()].rstrip("\n").rsplit("\n", 1)[-1]
        needs = NEEDS.search(before)
        found.append(Block(path.relative_to(REPO).as_posix(), line, m.group("lang"),
                           textwrap.dedent(m.group("code")), needs.group("needs") if needs else ""))
    return found


RUNNABLE = [b for page in PAGES for b in blocks(page) if b.lang in RUN_LANGS]


def test_pages_have_runnable_blocks() -> None:
    """The collection itself works: the README's Python example and photo commands are among the blocks."""
    readme = [b for b in RUNNABLE if b.page == "README.md"]
    assert any("greenless.remove" in b.code for b in readme)
    assert any("greenless matte" in b.code and not b.needs for b in readme)
    assert not [b for b in blocks(REPO / "README.md") if b.lang == ""], "label every README block (text for output)"


def _scratch(tmp: Path) -> Path:
    """A folder laid out like the clone, with fixtures under the placeholder names the pages use."""
    work = tmp / "clone"
    work.mkdir()
    shutil.copytree(REPO / "examples", work / "examples")
    for name in ("benchmarks", "configs", "scripts", "src", "tests"):
        (work / name).symlink_to(REPO / name)
    shutil.copyfile(FIXTURES / "photos" / "portrait-640.jpg", work / "PHOTO.jpg")
    (work / "PHOTOS").mkdir()
    for src in sorted((FIXTURES / "photos").glob("*.jpg")):
        shutil.copyfile(src, work / "PHOTOS" / src.name)
    shutil.copyfile(FIXTURES / "backgrounds" / "beach.jpg", work / "BACKGROUND.jpg")
    shutil.copyfile(FIXTURES / "videos" / "room.mp4", work / "VIDEO.mp4")
    shutil.copyfile(FIXTURES / "videos" / "room.mp4", work / "BACKGROUND.mp4")
    (work / "FRAMES").mkdir()
    with Image.open(FIXTURES / "photos" / "portrait-640.jpg") as im:
        small = im.convert("RGB").resize((160, 100))
    for i in range(3):
        small.save(work / "FRAMES" / f"{i:03d}.png")
    dataset = work / "DATASET"
    for kind, ext in (("image", ".jpg"), ("alpha", ".png")):
        (dataset / kind).mkdir(parents=True)
        for stem in ("p_51c916fc", "p_bac3c1ff"):  # two portraits at a quarter size keep eval quick
            with Image.open(FIXTURES / "portraits" / kind / f"{stem}{ext}") as im:
                im.reduce(4).save(dataset / kind / f"{stem}{ext}")
    shutil.copytree(dataset / "alpha", work / "ALPHAS")
    bin_dir = tmp / "bin"
    bin_dir.mkdir()
    for name, target in (("greenless", f'exec "{sys.executable}" -m greenless "$@"'),
                         ("python", f'exec "{sys.executable}" "$@"'), ("python3", f'exec "{sys.executable}" "$@"')):
        (bin_dir / name).write_text(f"#!/bin/sh\n{target}\n")
        (bin_dir / name).chmod(0o755)
    return work


@pytest.mark.parametrize("block", RUNNABLE, ids=[f"{b.page}:{b.line}" for b in RUNNABLE])
def test_block_runs_as_pasted(block: Block, tmp_path: Path) -> None:
    if block.needs:
        pytest.skip(f"{block.page}:{block.line} needs: {block.needs}")
    work = _scratch(tmp_path)
    env = dict(os.environ)
    env["PATH"] = f"{tmp_path / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(REPO / "src") + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("OMP_NUM_THREADS", "2")
    if RUN_LANGS[block.lang] == "bash":
        cmd = ["bash", "-e", "-o", "pipefail", "-c", block.code]
    else:
        cmd = [sys.executable, "-c", block.code]
    proc = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=600,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, f"{block.page}:{block.line} failed:\n{block.code}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    if "greenless.remove" in block.code:  # the Python example: a real cut-out, background gone, astronaut kept
        cut = Image.open(work / "astronaut_cut.png")
        assert cut.mode == "RGBA" and cut.size == (512, 512)
        alpha = np.asarray(cut)[..., 3]
        assert alpha.min() == 0 and alpha.max() == 255
    if "greenless matte examples/astronaut.jpg" in block.code:
        assert Image.open(work / "examples" / "astronaut.png").mode == "RGBA"


def test_docs_site_builds_without_warnings(tmp_path: Path) -> None:
    """``mkdocs build --strict``: a broken link, a missing page or a bad anchor fails the build."""
    pytest.importorskip("mkdocs", reason="mkdocs is not installed (it is in the test extra: pip install -e '.[test]')")
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(tmp_path / "site")],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "site" / "index.html").is_file()


def test_install_lines_work_from_a_clone(repo_root: Path) -> None:
    """Every pip line in the README and docs installs from the clone (greenless is not on PyPI) with an extra that exists."""
    import tomllib

    extras = set(tomllib.loads((repo_root / "pyproject.toml").read_text())["project"]["optional-dependencies"])
    text = "\n".join(page.read_text() for page in PAGES)
    assert not re.search(r"pip install [\"']?greenless\[", text)
    named = re.findall(r"pip install -e ['\"]?\.\[([\w,]+)\]", text)
    assert named, "no install lines found"
    for group in named:
        assert set(group.split(",")) <= extras, group


def test_readme_is_short(repo_root: Path) -> None:
    """A README a person reads in five minutes; everything else lives in docs/."""
    assert len((repo_root / "README.md").read_text().splitlines()) <= 300


def test_missing_extra_hint_names_this_clone(repo_root: Path) -> None:
    from greenless.errors import install_hint

    hint = install_hint("video")
    assert hint == f"pip install -e '{repo_root.resolve()}[video]'"
