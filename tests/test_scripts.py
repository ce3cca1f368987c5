"""The repository's scripts (scripts/, benchmarks/) behave like the CLI: ``--help`` works, a missing input is one
error line (no traceback) before any work, and Ctrl-C is one line and exit code 130 (greenless.cli.script)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from greenless.cli.script import need_path, progress, run_script
from greenless.errors import GreenlessError

REPO = Path(__file__).resolve().parents[1]
MISSING = "/nonexistent-greenless-input"

# Each script with arguments that name a missing input (what a user mistypes first); None: it reads no input.
SCRIPTS: dict[str, list[str] | None] = {
    "scripts/build_extra_data.py": ["--shared", MISSING, "-o", f"{MISSING}/out"],
    "scripts/build_training_data.py": ["--shared", MISSING, "-o", f"{MISSING}/out"],
    "scripts/cli_reference.py": None,
    "scripts/compare_encoders.py": [f"{MISSING}/last.pt:mobilenetv2"],
    "scripts/derive_guide.py": ["--against", f"{MISSING}/model.onnx", "--wheel", f"{MISSING}/mediapipe.whl"],
    "scripts/gpu_bench.py": ["prepare", "--clip", f"{MISSING}/clip.mp4"],
    "scripts/gpu_train.py": ["prepare", f"{MISSING}/config.toml"],
    "scripts/make_readme_pictures.py": ["--shared", MISSING, "-o", f"{MISSING}/out"],
    "scripts/rebuild_weights.py": ["modnet", "--shared", MISSING, "--work", f"{MISSING}/runs"],
    "scripts/relabel_training_data.py": [f"{MISSING}/data", "-o", f"{MISSING}/out"],
    "scripts/ship_weights.py": [f"{MISSING}/final.safetensors", "--out", f"{MISSING}/out"],
    "scripts/soc_experiment.py": ["--weights", f"{MISSING}/w.safetensors", "-o", f"{MISSING}/out"],
    "benchmarks/bench_matte_photo.py": ["--data", MISSING],
    "benchmarks/flicker.py": [f"{MISSING}/clip.mp4"],
    "benchmarks/guide_compare.py": [MISSING],
    "benchmarks/jobs_compare.py": [f"{MISSING}/w.onnx"],
    "benchmarks/realtime_path.py": ["--data", MISSING],
    "benchmarks/serve_load.py": ["--image", f"{MISSING}/photo.jpg"],
    "benchmarks/stride_compare.py": ["--data", MISSING],
    "benchmarks/temporal_compare.py": ["--three", f"{MISSING}/w.onnx"],
    "benchmarks/train_throughput.py": ["--data", MISSING],
    "benchmarks/video_memory.py": ["--clip", f"{MISSING}/clip.mp4"],
    "benchmarks/video_pipeline.py": ["--clip", f"{MISSING}/clip.mp4"],
}


def run(script: str, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, str(REPO / script), *args], cwd=REPO, capture_output=True, text=True,
                          timeout=120, env=env, stdin=subprocess.DEVNULL)


def test_every_script_is_listed() -> None:
    """A new script gets a row in SCRIPTS (benchmarks/test_*.py are pytest-benchmark files, _*.py helpers)."""
    found = {p.relative_to(REPO).as_posix() for folder in ("scripts", "benchmarks") for p in (REPO / folder).glob("*.py")
             if not p.name.startswith(("_", "test_"))}
    assert found == set(SCRIPTS)


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_script_help(script: str) -> None:
    proc = run(script, "--help")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith("usage:") and not proc.stderr


@pytest.mark.parametrize("script", sorted(s for s, args in SCRIPTS.items() if args is not None))
def test_script_missing_input_is_one_line(script: str) -> None:
    proc = run(script, *SCRIPTS[script])
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode != 0 and len(lines) == 1, proc.stderr[-2000:]
    assert "nonexistent-greenless-input" in lines[0] or "package" in lines[0], lines[0]  # names the path (or the tool)
    assert not Path(MISSING).exists()


def test_run_script_turns_errors_into_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    def raising(exc: BaseException):  # noqa: ANN202
        def main() -> None:
            raise exc
        return main

    for exc, code, text in ((GreenlessError("bad input"), 2, "prog: error: bad input"),
                            (FileNotFoundError(2, "No such file", "/x/y.png"), 2, "prog: error: /x/y.png: no such file"),
                            (KeyboardInterrupt(), 130, "prog: interrupted (SIGINT)")):
        with pytest.raises(SystemExit) as stop:
            run_script(raising(exc), "prog")
        assert stop.value.code == code
        assert capsys.readouterr().err.strip().startswith(text)
    with pytest.raises(ZeroDivisionError):  # a bug keeps its traceback
        run_script(raising(ZeroDivisionError()), "prog")
    run_script(lambda: None, "prog")  # a clean run returns
    with pytest.raises(SystemExit) as stop:
        run_script(lambda: 3, "prog")
    assert stop.value.code == 3


def test_ctrl_c_in_a_script_is_one_line_and_130() -> None:
    code = ("import sys, time\nfrom greenless.cli.script import run_script\n"
            "def main():\n    print('ready', flush=True)\n    time.sleep(60)\nrun_script(main, 'demo')\n")
    env = dict(os.environ, PYTHONPATH=str(REPO / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)
    try:
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 130
    assert err.strip().splitlines() == ["demo: interrupted (SIGINT)"]


def test_need_path_and_plain_progress(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert need_path(tmp_path, "the folder", "dir") == tmp_path
    with pytest.raises(GreenlessError, match=r"no such file \(the weights\); train first"):
        need_path(tmp_path / "w.onnx", "the weights", "file", hint="train first")
    with pytest.raises(GreenlessError, match="no such file"):
        need_path(tmp_path, "the weights", "file")  # a folder is not a file
    assert list(progress(range(3), "steps")) == [0, 1, 2]
    err = capsys.readouterr().err.splitlines()  # not a terminal: the first and the last item at least
    assert err[0] == "steps 1/3" and err[-1] == "steps 3/3"
