"""Reliability of weights and their cards: a broken card, a model of another shape or a refused pickle is one
error line naming the file and what is wrong, wherever the card lives (ONNX metadata, JSON beside the file,
safetensors metadata), and no output is written.

The ONNX models here are built in tmp_path with ``onnx.helper``: a one-node network (the channel mean) with a
matting model's signature, so each case runs a real onnxruntime session in milliseconds.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from conftest import run_greenless, run_main

onnx = pytest.importorskip("onnx", reason="building test models needs onnx (the torch extra)")
from onnx import TensorProto, helper  # noqa: E402

FLOAT, INT64 = TensorProto.FLOAT, TensorProto.INT64


def lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.strip()]


def tiny_model(path: Path, card: Any = None, raw_card: str | None = None, inputs: list[tuple[str, int, list]] | None = None,
               out_shape: list | None = None, out_type: int = FLOAT) -> Path:
    """A matting-shaped ONNX model (N x C x H x W in, the channel mean N x 1 x H x W out) at ``path``; ``card``
    (any JSON value) or ``raw_card`` (text) stored as its greenless card; ``inputs``/``out_shape`` change its
    signature."""
    inputs = inputs or [("input", FLOAT, [None, 3, None, None])]
    values = [helper.make_tensor_value_info(name, kind, shape) for name, kind, shape in inputs]
    out = helper.make_tensor_value_info("matte", out_type, out_shape or [None, 1, None, None])
    if len(inputs) == 1 and (out_shape is None or out_shape[1:2] == [1]):
        node = helper.make_node("ReduceMean", [inputs[0][0]], ["matte"], axes=[1], keepdims=1)
    elif len(inputs) == 1:
        node = helper.make_node("Identity", [inputs[0][0]], ["matte"])
    else:
        node = helper.make_node("Add", [i[0] for i in inputs], ["matte"])
    model = helper.make_model(helper.make_graph([node], "tiny", values, [out]),
                              opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    text = raw_card if raw_card is not None else (json.dumps(card) if card is not None else None)
    if text is not None:
        entry = model.metadata_props.add()
        entry.key, entry.value = "greenless_card", text
    onnx.save(model, str(path))
    return path


@pytest.fixture()
def photo(tmp_path: Path) -> Path:
    path = tmp_path / "in.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(path)
    return path


def matte_with(weights: Path, photo: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str, Path]:
    out = photo.with_name("out.png")
    code, err = run_main(["matte", photo, "-o", out, "--weights", weights, *extra], capsys)
    return code, err, out


def test_a_tiny_model_with_a_valid_card_runs(tmp_path: Path, photo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The control: the models below differ from this one only in what the case breaks."""
    model = tiny_model(tmp_path / "ok.onnx", {"ref_size": 64, "photo_ref_size": 96.0, "model": {"in_channels": 3}})
    code, err, out = matte_with(model, photo, capsys)
    assert code == 0 and out.is_file(), err
    from greenless.matter import Matter

    assert Matter(model).ref_size == 96


@pytest.mark.parametrize("card, raw, says", [
    (None, "{garbage", "not valid JSON"),
    ([1, 2], None, "must be a JSON object, not list"),
    ("just a string", None, "must be a JSON object, not str"),
    ({"ref_size": "big"}, None, "card ref_size must be a whole number from 32 to 2048, not 'big'"),
    ({"ref_size": 1e9}, None, "card ref_size must be a whole number from 32 to 2048"),
    ({"ref_size": 16}, None, "card ref_size must be a whole number from 32 to 2048, not 16"),
    ({"photo_ref_size": 300.5}, None, "card photo_ref_size must be a whole number"),
    ({"photo_ref_size": True}, None, "card photo_ref_size must be a whole number"),
    (None, '{"ref_size": NaN}', "card ref_size must be a whole number"),
    ({"hint": "telepathy"}, None, "card hint must be one of guide, prev-alpha, not 'telepathy'"),
    ({"preprocess": 3}, None, "card preprocess must be one of greenless, modnet-demo, not 3"),
    ({"model": [4]}, None, "card model must be an object, not list"),
    ({"model": {"in_channels": "4"}}, None, "card model.in_channels must be 3 or 4, not '4'"),
    ({"model": {"in_channels": 7}}, None, "card model.in_channels must be 3 or 4, not 7"),
    ({"source": ["official checkpoint"]}, None, "card source must be a string"),
])
def test_a_bad_card_in_an_onnx_file_is_one_line(tmp_path: Path, photo: Path, capsys: pytest.CaptureFixture[str],
                                                card: Any, raw: str | None, says: str) -> None:
    model = tiny_model(tmp_path / "bad.onnx", card, raw)
    code, err, out = matte_with(model, photo, capsys)
    assert code == 2 and len(lines(err)) == 1, err
    assert err.startswith(f"greenless: error: {model}: ") and says in err, err
    assert "Traceback" not in err and not out.exists()


def test_a_bad_card_beside_an_onnx_file_is_one_line(tmp_path: Path, photo: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    model = tiny_model(tmp_path / "plain.onnx")  # no card inside: the JSON beside it is read
    (tmp_path / "plain.json").write_text('{"ref_size": {"short": 288}}')
    code, err, out = matte_with(model, photo, capsys)
    assert code == 2 and len(lines(err)) == 1, err
    assert f"{tmp_path / 'plain.json'}: card ref_size must be a whole number" in err and not out.exists()
    (tmp_path / "plain.json").write_bytes(b"\xff\xfe not text")
    code, err, out = matte_with(model, photo, capsys)
    assert code == 2 and len(lines(err)) == 1 and "not valid JSON" in err, err


@pytest.mark.parametrize("kwargs, says", [
    ({"inputs": [("x", FLOAT, [3])], "out_shape": [3]}, "its input is a 1-d tensor(float)"),
    ({"inputs": [("a", FLOAT, [1, 3, None, None]), ("b", FLOAT, [1, 3, None, None])]}, "it takes 2 inputs (a, b)"),
    ({"inputs": [("input", INT64, [None, 3, None, None])], "out_type": INT64}, "its input is a 4-d tensor(int64)"),
    ({"inputs": [("input", FLOAT, [None, 5, None, None])]}, "its input has 5 channels"),
    ({"out_shape": [None, 3, None, None]}, "it gives a 4-d tensor(float) of shape [None, 3, None, None]"),
    ({"inputs": [("input", FLOAT, [1, 3, 512, 512])], "out_shape": [1, 1, 512, 512]}, "the model failed on a 1 x 3 x"),
])
def test_an_onnx_model_of_another_shape_is_one_line(tmp_path: Path, photo: Path, capsys: pytest.CaptureFixture[str],
                                                    kwargs: dict[str, Any], says: str) -> None:
    model = tiny_model(tmp_path / "other.onnx", **kwargs)
    code, err, out = matte_with(model, photo, capsys)
    assert code == 2 and len(lines(err)) == 1, err
    assert err.startswith(f"greenless: error: {model}: ") and says in err, err
    assert not out.exists()


def test_the_packaged_cards_are_valid() -> None:
    from greenless.card import read_card, validate_card
    from greenless.registry import PACKAGED

    for model in PACKAGED.values():
        card = model.card()
        assert card == validate_card(card, model.name) and card["ref_size"] >= 32
        if model.in_wheel:  # the others ship their card only
            assert read_card(model.path("torch"))["model"]["in_channels"] == model.in_channels


def test_a_bad_card_in_a_safetensors_file_is_one_line(tmp_path: Path, photo: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("torch", reason="the torch engine needs the torch extra")
    from safetensors.numpy import save_file

    weights = tmp_path / "bad.safetensors"
    save_file({"w": np.zeros(2, np.float32)}, str(weights), metadata={"greenless_card": '{"model": {"in_channels": 2}}'})
    code, err, out = matte_with(weights, photo, capsys, "--engine", "torch")
    assert code == 2 and len(lines(err)) == 1, err
    assert f"{weights}: card model.in_channels must be 3 or 4, not 2" in err and not out.exists()
    weights.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{garbage")
    code, err, out = matte_with(weights, photo, capsys, "--engine", "torch")
    assert code == 2 and len(lines(err)) == 1 and f"{weights}: not a readable safetensors file" in err, err


class _RunsCode:
    """Unpickling this would run a shell command: the kind of checkpoint weights_only refuses."""

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        import os

        return os.system, ("touch PWNED",)


@pytest.mark.parametrize("make, says", [
    ("torch", "refused: this pickle holds Python objects besides tensors, which could run code when loaded"),
    ("pickle4", "not a checkpoint greenless can load safely (Unsupported operand"),  # PyTorch warns on protocol 4
    ("empty", "not a PyTorch checkpoint (EOFError)"),  # an empty message used to be an IndexError traceback
    ("text", "not a PyTorch checkpoint"),
])
def test_a_refused_or_broken_pickle_is_one_line_without_pytorchs_warning(tmp_path: Path, photo: Path, make: str,
                                                                         says: str) -> None:
    torch = pytest.importorskip("torch", reason="the torch engine needs the torch extra")
    evil = tmp_path / "evil.ckpt"
    payload = {"state_dict": {"x": _RunsCode()}}
    if make == "torch":
        torch.save(payload, evil)
    elif make == "pickle4":
        evil.write_bytes(pickle.dumps(payload, protocol=4))
    else:
        evil.write_bytes(b"" if make == "empty" else b"hello, not a pickle")
    out = tmp_path / "out.png"
    result = run_greenless("matte", str(photo), "-o", str(out), "--engine", "torch", "--weights", str(evil),
                           cwd=tmp_path, timeout=300)
    err = result.stderr.decode()
    assert result.returncode == 2 and len(lines(err)) == 1, err
    assert err.startswith(f"greenless: error: {evil}: {says}"), err
    assert "weights_only" not in err and not out.exists() and not (tmp_path / "PWNED").exists()


def test_first_line_is_the_type_when_the_message_is_empty() -> None:
    from greenless.errors import first_line

    assert first_line(EOFError()) == "EOFError"
    assert first_line(ValueError("  first\nsecond")) == "first"
    assert first_line(RuntimeError("x" * 500), limit=10) == "x" * 10


def test_a_bad_card_inside_a_torchscript_file_is_one_line(tmp_path: Path, photo: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    torch = pytest.importorskip("torch", reason="the torch engine needs the torch extra")
    traced = torch.jit.trace(torch.nn.Conv2d(3, 1, 1).eval(), torch.zeros(1, 3, 32, 32))
    weights = tmp_path / "net.pt"
    torch.jit.save(traced, str(weights), _extra_files={"greenless_card.json": '{"ref_size": "big"}'})
    code, err, out = matte_with(weights, photo, capsys, "--engine", "torch")
    assert code == 2 and len(lines(err)) == 1, err
    assert f"{weights}: card ref_size must be a whole number from 32 to 2048, not 'big'" in err and not out.exists()
