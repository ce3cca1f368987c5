"""Model exports: ONNX (dynamic batch, height and width; input ``input`` NCHW float32 in [-1, 1], output
``matte``), TorchScript, fp16 and static int8 ONNX, each checked against the PyTorch model before it is written.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from greenless.card import CARD_KEY

if TYPE_CHECKING:
    from greenless.export_check import ExportCheck, Runner
    from greenless.pipeline.recipe import Recipe

ONNX_OPSET = 17
#: Opsets ``export_onnx`` can write: from the first with the operators MODNet needs to the last that PyTorch's
#: TorchScript-based exporter (the one used here) knows (``torch.onnx._constants.ONNX_TORCHSCRIPT_EXPORTER_MAX_OPSET``).
MIN_OPSET, MAX_OPSET = 13, 20


def check_opset(opset: int) -> int:
    """``opset`` when ``export_onnx`` can write it, else one error line (999 used to be PyTorch's traceback)."""
    from greenless.errors import GreenlessError

    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise GreenlessError(f"--opset must be from {MIN_OPSET} to {MAX_OPSET}, not {opset}")
    return opset


def export_onnx(model: Any, path: str | Path, card: dict[str, Any] | None = None, opset: int = ONNX_OPSET) -> Path:
    """Trace ``model`` (eval mode) to ONNX at ``path``, storing the card as model metadata."""
    import onnx
    import torch

    path = Path(path)
    model = model.eval().float()
    channels = model.config.in_channels
    dummy = torch.zeros(1, channels, 256, 256)
    tmp = path.with_name(path.name + ".tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # InstanceNorm's "train=True" note: IBNorm uses instance stats by design
        torch.onnx.export(
            model, (dummy,), str(tmp), input_names=["input"], output_names=["matte"], opset_version=opset,
            dynamic_axes={"input": {0: "batch", 2: "height", 3: "width"}, "matte": {0: "batch", 2: "height", 3: "width"}},
            dynamo=False,
        )
    proto = onnx.load(str(tmp))
    if card:
        entry = proto.metadata_props.add()
        entry.key, entry.value = CARD_KEY, json.dumps(card)
    onnx.save(proto, str(tmp))
    tmp.replace(path)
    return path


def torch_runner(model: Any) -> Runner:
    """A runner (NCHW batch -> N1HW matte) over an eager PyTorch model in fp32, in eval mode."""
    from greenless.engines.torch import module_runner

    return module_runner(model.eval().float())


def onnx_runner(path: str | Path, device: str | None = "cpu") -> Runner:
    """A runner over an ONNX file (CPU by default so check figures do not depend on the machine)."""
    import numpy as np

    from greenless.engines.onnx import OnnxEngine

    engine = OnnxEngine(Path(path), device=device)
    return lambda batch: engine.run(np.asarray(batch, np.float32))


def torchscript_runner(path: str | Path) -> Runner:
    """A runner over a TorchScript file saved by ``export_torchscript``."""
    import numpy as np
    import torch

    module = torch.jit.load(str(path), map_location="cpu").eval()

    def run(batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return module(torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))).numpy()

    return run


def export_torchscript(model: Any, path: str | Path, card: dict[str, Any] | None = None,
                       check_size: tuple[int, int] = (192, 320)) -> Path:
    """Trace ``model`` to TorchScript at 256x256 and save it with its card; fails if it misbehaves at ``check_size``."""
    import torch

    from greenless.errors import GreenlessError

    path = Path(path)
    model = model.eval().float()
    channels = model.config.in_channels
    with torch.inference_mode():
        traced = torch.jit.trace(model, (torch.zeros(1, channels, 256, 256),), check_trace=False)
        probe = torch.rand(1, channels, *check_size) * 2 - 1
        expected, got = model(probe), traced(probe)
    if got.shape != expected.shape or float((got - expected).abs().max()) > 1e-3:
        raise GreenlessError(f"TorchScript trace does not generalise to {check_size[0]}x{check_size[1]} inputs; not written")
    tmp = path.with_name(path.name + ".tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.jit.save(traced, str(tmp), _extra_files={f"{CARD_KEY}.json": json.dumps(card or {})})
    tmp.replace(path)
    return path


def set_onnx_card(path: str | Path, card: dict[str, Any]) -> None:
    """Store ``card`` as the ``greenless_card`` metadata entry of an ONNX file (replacing any old one)."""
    import onnx

    proto = onnx.load(str(path))
    kept = [(p.key, p.value) for p in proto.metadata_props if p.key != CARD_KEY]
    del proto.metadata_props[:]
    for key, value in [*kept, (CARD_KEY, json.dumps(card))]:
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, str(path))


def convert_fp16(src: str | Path, dst: str | Path) -> Path:
    """fp32 ONNX -> fp16 weights and activations with float32 input/output kept (meant for GPUs)."""
    import onnx

    try:
        from onnxconverter_common import float16
    except ImportError:
        from greenless.errors import GreenlessError, install_hint

        raise GreenlessError(f"--fp16 needs onnxconverter-common: {install_hint('export')}") from None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # one warning per weight clipped to the fp16 range
        half = float16.convert_float_to_float16(onnx.load(str(src)), keep_io_types=True)
    onnx.save(half, str(dst))
    return Path(dst)


def quantize_int8(src: str | Path, dst: str | Path, calibration: list[Any], recipe: Recipe) -> Path:
    """Static int8 quantisation (QDQ, per-channel s8 weights, u8 activations) calibrated on real RGB images,
    prepared by ``recipe`` as the export will see them (a guided network gets each image's guide)."""
    import logging
    import os
    import tempfile

    import numpy as np
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    batches = [recipe.prepare([rgb]).x for rgb in calibration]
    if recipe.channels == 4:
        # The previous-alpha channel must be calibrated over its real range, not only blank: add each
        # image again with the fp32 model's own matte of it as the previous alpha (as in a video).
        import onnxruntime as ort

        session = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"])
        batches += [np.concatenate([b[:, :3], session.run(None, {"input": b})[0] * 2.0 - 1.0], axis=1)
                    for b in list(batches)]

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.items = iter(batches)

        def get_next(self) -> dict[str, Any] | None:
            batch = next(self.items, None)
            return None if batch is None else {"input": batch}

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantiser logs a warning per 1-D norm weight it leaves per-tensor
    try:
        with tempfile.TemporaryDirectory(dir=Path(dst).parent) as tmp:
            prepared = os.path.join(tmp, "prepared.onnx")
            quant_pre_process(str(src), prepared, skip_symbolic_shape=True)
            quantize_static(prepared, str(dst), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            calibrate_method=CalibrationMethod.MinMax)
    finally:
        root.setLevel(level)
    return Path(dst)


VARIANTS = ("onnx", "torchscript", "fp16", "int8")


def export_checked(model: Any, path: str | Path, variant: str, card: dict[str, Any], check_images: list[Any],
                   check_alphas: list[Any], ref_size: int, calibration: list[Any] | None = None,
                   opset: int = ONNX_OPSET, max_degradation: float = 0.05) -> ExportCheck:
    """Export ``variant`` of ``model`` to ``path`` only if it passes the check against the torch model.

    The variant is written to a temporary file beside ``path``, compared with the eager model on the
    check images, and moved into place (ONNX: with a ``.json`` card beside it and in its metadata; TorchScript:
    the card inside the file as ``greenless_card.json``), holding the figures, only when its MAD is
    at most ``max_degradation`` worse and, for the fp32 variants, its mattes match within 1e-3.
    Otherwise ``GreenlessError`` is raised and nothing is written. The check and the int8 calibration run the
    recipe a stream runs the exported file with at ``ref_size`` (``recipe_for`` of the card it is written
    with), so the figures are those of the mattes ``Matter`` gives.
    """
    import os

    from greenless.errors import GreenlessError
    from greenless.export_check import compare, enforce
    from greenless.pipeline.recipe import recipe_for

    if variant not in VARIANTS:
        raise GreenlessError(f"unknown export variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    if variant == "int8" and not calibration:
        raise GreenlessError("int8 export needs calibration images")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    stem = f".{path.name}.{os.getpid()}"
    fp32 = path.with_name(stem + ".fp32.onnx")
    out = path.with_name(stem + (".pt" if variant == "torchscript" else ".onnx"))
    card = {**card, "variant": variant, "opset": opset if variant != "torchscript" else None, "ref_size": ref_size}
    recipe = recipe_for(card, model.config.in_channels, "stream")
    try:
        if variant == "torchscript":
            export_torchscript(model, out, card)
            candidate = torchscript_runner(out)
        else:
            export_onnx(model, fp32 if variant != "onnx" else out, card, opset=opset)
            if variant == "fp16":
                convert_fp16(fp32, out)
            elif variant == "int8":
                quantize_int8(fp32, out, calibration or [], recipe)
            candidate = onnx_runner(out)
        check = compare(variant, torch_runner(model), candidate, check_images, check_alphas, recipe)
        enforce(check, max_degradation, 1e-3 if variant in ("onnx", "torchscript") else None)
        card["check"] = check.to_dict()
        if variant == "torchscript":  # the card travels inside the .pt; no .json beside it to clash with an .onnx's
            import torch

            torch.jit.save(torch.jit.load(str(out)), str(out), _extra_files={f"{CARD_KEY}.json": json.dumps(card)})
            out.replace(path)
            return check
        set_onnx_card(out, card)
        card_tmp = path.with_name(stem + ".json")
        card_tmp.write_text(json.dumps(card, indent=2) + "\n")
        out.replace(path)
        card_tmp.replace(path.with_suffix(".json"))
        return check
    finally:
        for leftover in (fp32, out, path.with_name(stem + ".json")):
            leftover.unlink(missing_ok=True)
