"""Smoke test of ``greenless bench``: the JSON report's structure, never its times (a benchmark is not a test)."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import run_greenless


def test_bench_quick_json_structure(reference_model: Path) -> None:
    """One timed run at 512x288 (batch 1 and 4) for the packaged model and the reference; torch and the
    paper export are left out (--skip) to stay fast."""
    proc = run_greenless("bench", "--quick", "--json", "--repeat", "1", "--warmup", "0", "--resolution", "512x288",
                         "--skip", "torch", "--skip", "paper", "--threads", "1", "--reference", str(reference_model),
                         timeout=120)
    assert proc.returncode == 0, proc.stderr.decode()
    report = json.loads(proc.stdout)  # stdout is the JSON object only
    assert set(report) == {"machine", "settings", "models"}
    assert report["settings"]["resolutions"] == ["512x288"] and report["settings"]["repeat"] == 1
    assert {"cpu", "logical_cores", "onnxruntime"} <= set(report["machine"])
    by_name = {m["name"]: m for m in report["models"]}
    ours, ref = by_name["greenless modnet"], by_name["reference selfie segmentation"]
    assert ours["kind"] == "onnx" and ours["path"].endswith("modnet.onnx")
    # every other packaged set in the package is timed side by side (modnet-paper is not in it: card only)
    assert all(m["rows"] for name, m in by_name.items() if name.startswith("greenless "))
    measures = {(r["what"], r["batch"]) for r in ours["rows"]}
    assert measures == {("network", 1), ("network", 4), ("end-to-end", 1)}
    assert {(r["what"], r["batch"]) for r in ref["rows"]} == {("network", 1), ("end-to-end", 1)}
    for model in (ours, ref):
        assert model["peak_rss_mb"] > 50
        for row in model["rows"]:
            assert row["p10_ms"] <= row["median_ms"] <= row["p90_ms"] and row["fps"] > 0
            assert row["input"] == "512x288" and row["speed_vs_paper"] is None
    from greenless import Matter

    net_h, net_w = Matter(model="modnet", stream=True).recipe.network_size(288, 512)  # the real-time default's size
    assert (net_h, net_w) == (256, 512)  # its stride is 64 (greenless.card.network_stride)
    assert ours["rows"][0]["network"] == f"{net_w}x{net_h}" and ref["rows"][0]["network"] == "256x256"
    assert not any(m["kind"] == "torch" for m in report["models"])


def test_bench_rejects_unknown_resolution() -> None:
    proc = run_greenless("bench", "--resolution", "640x640", timeout=60)
    err = proc.stderr.decode()
    assert proc.returncode == 2 and err.count("\n") == 1 and "640x640" in err


def test_plan_notes_what_it_cannot_time(tmp_path: Path) -> None:
    """Without a reference model or a paper export, those rows are kept as skipped models with a note."""
    from greenless.evaluate.benchmark import PAPER_NAME, plan

    specs, skipped = plan(None, {"torch"}, None)
    assert [(s.name, s.kind) for s in specs][0] == ("greenless modnet", "onnx")
    notes = {m.name: m.note for m in skipped}
    assert "--reference" in notes["reference selfie segmentation"] and "PyTorch" in notes[PAPER_NAME]
    paper = tmp_path / "paper.onnx"
    paper.write_bytes(b"")
    specs, skipped = plan(None, {"torch", "reference"}, paper)
    assert specs[-1].name == PAPER_NAME and not skipped


def test_unloadable_model_is_a_one_line_failure(tmp_path: Path) -> None:
    """A broken model file ends its worker with one clear line (the bench then notes it and goes on)."""
    import pytest

    from greenless.errors import GreenlessError
    from greenless.evaluate.benchmark import ModelSpec, Worker

    bad = tmp_path / "modnet.int8.onnx"
    bad.write_bytes(b"not an onnx file")
    with pytest.raises(GreenlessError, match=r"cannot load .*modnet\.int8\.onnx"):
        Worker(ModelSpec("greenless", "onnx", str(bad), "int8"), 512, 1)


def test_bench_warns_in_one_line_when_the_machine_is_busy(monkeypatch, capsys) -> None:
    """Load above the cores: one warning line on stderr beside the figures; an idle machine: none. A bad option
    is still one error line (the warning comes with figures only)."""
    from conftest import run_main
    from greenless.evaluate import benchmark

    assert benchmark.busy_note(load=1.5, cores=2) is None
    assert "load 9.0 on 2 cores" in benchmark.busy_note(load=9.0, cores=2)
    monkeypatch.setattr(benchmark, "run_benchmark", lambda **kwargs: {"models": []})
    monkeypatch.setattr(benchmark.os, "getloadavg", lambda: (64.0, 1.0, 1.0))
    monkeypatch.setattr(benchmark.os, "cpu_count", lambda: 4)
    code, err = run_main(["bench", "--quick", "--json"], capsys)
    assert code == 0
    assert err.splitlines() == ["greenless: warning: the machine is busy (1-minute load 64.0 on 4 cores): these "
                                "figures are what is left beside other work, not the machine's speed"]
    code, err = run_main(["bench", "--engine", "x"], capsys)
    assert code == 2 and err.count("\n") == 1 and "go with --device" in err
    monkeypatch.setattr(benchmark.os, "getloadavg", lambda: (0.5, 1.0, 1.0))
    code, err = run_main(["bench", "--quick", "--json"], capsys)
    assert code == 0 and err == ""
