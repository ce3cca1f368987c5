"""SIGTERM, SIGHUP and Ctrl-C during a folder run (``greenless matte DIR``) or training: one line naming the
signal and the shell's code for it (143, 129, 130), as ``greenless video`` does. Typer turns any
KeyboardInterrupt into a silent exit 130, so without care every one of them read as Ctrl-C.

Each run is held mid-work (a patched step touches a marker and sleeps) so the signal always lands inside it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

_HELD = """
import sys, time
from pathlib import Path
marker = Path(sys.argv[1])
def hold(*args, **kwargs):
    marker.touch()
    while True:
        time.sleep(60)
if sys.argv[2] == "train":
    import greenless.train.supervised as target
    target.lr_factor = hold
else:
    import greenless.matter as target
    target.Matter.matte = hold
from greenless.cli import main
main(sys.argv[2:])
"""


def _default_signals() -> None:
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)


def stop_held(tmp: Path, args: list[str], sig: int) -> tuple[int, list[str]]:
    marker = tmp / "held"
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"), OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-c", _HELD, str(marker), *args], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, preexec_fn=_default_signals)
    deadline = time.monotonic() + 300
    while not marker.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"the run ended or stalled before it was held: {proc.communicate()[1][-2000:]}")
        time.sleep(0.05)
    proc.send_signal(sig)
    err = proc.communicate(timeout=120)[1]
    return proc.returncode, [line for line in err.splitlines() if line.strip()]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT], ids=lambda s: signal.Signals(s).name)
def test_a_stopped_folder_run_exits_with_the_signals_code(tmp_path: Path, data: Path, sig: int) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    for photo in sorted((data / "portraits" / "image").iterdir())[:2]:
        shutil.copy(photo, folder)
    code, lines = stop_held(tmp_path, ["matte", str(folder), "-o", str(tmp_path / "out")], sig)
    assert code == 128 + sig and lines == [f"greenless: error: interrupted ({signal.Signals(sig).name})"], (code, lines)


def test_a_stopped_training_run_exits_143_on_sigterm(tmp_path: Path, tiny_set: Path) -> None:
    from test_train import write_config

    cfg = write_config(tmp_path, tiny_set, "run", 5, 2)
    code, lines = stop_held(tmp_path, ["train", str(cfg)], signal.SIGTERM)
    assert code == 143 and lines == ["greenless: error: interrupted (SIGTERM)"], (code, lines)
