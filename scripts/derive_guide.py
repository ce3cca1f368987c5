"""Derive the packaged guide model from Google's own file, check it against the shipped one, and (``--install``)
ship it with its provenance.

Source: ``mediapipe/modules/selfie_segmentation/selfie_segmentation.tflite`` (MediaPipe selfie segmentation,
the general 256x256 model; Apache-2.0, by Google) inside a mediapipe 0.10.x wheel from PyPI, fetched with
``pip download --no-deps`` (mediapipe is not installed) or given with ``--wheel``. Its weights are float16
constants behind DEQUANTIZE ops; they are widened to float32 here, as TFLite does at run time.

Conversion: done here with the ``tflite`` package (Apache-2.0; a reader of the TFLite flatbuffer) and
``onnx``'s helper API (Apache-2.0), both in the ``guide`` extra. The ready-made converters could not do it:
tflite2onnx 0.4.1 (Apache-2.0) stops at HARD_SWISH and knows nothing of MediaPipe's custom
``Convolution2DTransposeBias`` op; tf2onnx (Apache-2.0) needs TensorFlow and still not that op. The model
uses 11 op kinds, each mapped one-to-one below; activations are NCHW inside the ONNX graph, with one
Transpose at each end so that the ONNX model keeps the TFLite model's NHWC input and output (what
``greenless.pipeline.guide.SelfieSegmenter`` feeds and reads).

Check: the derived model and ``--against`` (default: the packaged ``greenless/assets/selfie_segmentation.onnx``)
segment every image of ``--images`` the way the guide does (squashed to 256x256 and letterboxed); the max
and mean absolute differences of the masks are printed. ``--install`` replaces the packaged file and
rewrites its licence file with the chain (wheel, SHA-256 sums, converter versions) only when the mean
difference is under ``--tolerance``; otherwise nothing in the package changes.

    pip install -e '.[guide]'
    python scripts/derive_guide.py                 # derive into runs/guide/, compare, change nothing
    python scripts/derive_guide.py --install       # ... and ship it if it matches
"""

from __future__ import annotations

import argparse
import hashlib
import os
import struct
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from greenless.cli.script import need_path, progress, run_script
from greenless.errors import GreenlessError, install_hint
from greenless.media.images import write_bytes_atomic

REPO = Path(__file__).resolve().parents[1]
ASSETS = REPO / "src" / "greenless" / "assets"
ASSET = ASSETS / "selfie_segmentation.onnx"
LICENCE = ASSETS / "LICENSE.selfie_segmentation.txt"
MEMBER = "mediapipe/modules/selfie_segmentation/selfie_segmentation.tflite"
# The file greenless shipped before this script existed, checked against when the derived file replaced it.
PREVIOUS = {"1511ab5564cb0ae179cba9bcad6ad931003ccc71656f11fd270967023678c6a5":
            "the file shipped before (an ONNX conversion of the same Google model by royshil/obs-backgroundremoval)"}
VERSION = "0.10.21"  # the last 0.10.x checked; 0.10.14 carries the same tflite, byte for byte
PLATFORM = "manylinux_2_28_x86_64"  # the tflite is the same in every platform's wheel; one must be named
OPSET = 17  # HardSwish needs 14; onnxruntime >= 1.17 (the core's floor) runs 17
IR_VERSION = 8  # the lowest IR for opset 17, so older onnxruntime releases load the file too

# TFLite enums (schema.fbs), spelled out so the mapping below reads plainly.
FLOAT32, FLOAT16, INT32 = 0, 1, 2
SAME, VALID = 0, 1
FUSED = {0: None, 1: "Relu", 3: "Relu6"}  # fused activations this converter writes; others are refused
NPTYPE = {FLOAT32: np.float32, FLOAT16: np.float16, INT32: np.int32}


def sha256(data: bytes | Path) -> str:
    """Hex SHA-256 of bytes or of a file's contents."""
    return hashlib.sha256(data.read_bytes() if isinstance(data, Path) else data).hexdigest()


# ---------------------------------------------------------------------------------------------- conversion


def _same_pads(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TensorFlow's SAME padding (before, after) along one axis: the extra pixel goes after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


class _Converter:
    """One pass over a single-subgraph TFLite model, emitting ONNX nodes in NCHW."""

    def __init__(self, tflite_bytes: bytes) -> None:
        import tflite

        self.tfl = tflite
        self.model = tflite.Model.GetRootAsModel(tflite_bytes, 0)
        if self.model.SubgraphsLength() != 1:
            raise GreenlessError(f"expected one subgraph, found {self.model.SubgraphsLength()}")
        self.graph = self.model.Subgraphs(0)
        self.consts: dict[int, np.ndarray] = {}  # tensor index -> value, in TFLite's layout
        self.nodes: list[Any] = []
        self.alias: dict[int, str] = {}  # tensor index -> name inside the graph, where it is not the TFLite name
        self.inits: list[Any] = []
        self.op_names = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
        for i in range(self.graph.TensorsLength()):
            value = self._buffer(i)
            if value is not None:
                self.consts[i] = value

    # tensors

    def _tensor(self, i: int) -> Any:
        return self.graph.Tensors(i)

    def _buffer(self, i: int) -> np.ndarray | None:
        t = self._tensor(i)
        raw = self.model.Buffers(t.Buffer()).DataAsNumpy()
        if isinstance(raw, int) or raw.size == 0:
            return None
        if t.Type() not in NPTYPE:
            raise GreenlessError(f"tensor {t.Name().decode()}: unsupported type {t.Type()}")
        return np.frombuffer(raw.tobytes(), NPTYPE[t.Type()]).reshape(t.ShapeAsNumpy())

    def name(self, i: int) -> str:
        return self.alias.get(i) or self._tensor(i).Name().decode()

    def shape(self, i: int) -> list[int]:
        return [int(d) for d in self._tensor(i).ShapeAsNumpy()]

    def const(self, value: np.ndarray, name: str) -> str:
        from onnx import numpy_helper

        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def operand(self, i: int) -> str:
        """An ADD/MUL operand: an activation's name, or a constant laid out for NCHW broadcasting."""
        if i not in self.consts:
            return self.name(i)
        value = self.consts[i].astype(np.float32)
        if value.ndim == 4:
            value = value.transpose(0, 3, 1, 2)
        elif value.ndim == 1:
            value = value.reshape(-1, 1, 1)
        return self.const(value, self.name(i))

    def node(self, op: str, inputs: list[str], output: str, fused: int = 0, **attrs: Any) -> None:
        """Append ``op`` writing ``output``, followed by its fused activation if it has one."""
        from onnx import helper

        if fused not in FUSED:
            raise GreenlessError(f"{output}: unsupported fused activation {fused}")
        act = FUSED[fused]
        raw = output + "_preact" if act else output
        self.nodes.append(helper.make_node(op, inputs, [raw], name=raw, **attrs))
        if act == "Relu":
            self.nodes.append(helper.make_node("Relu", [raw], [output], name=output))
        elif act == "Relu6":
            lo, hi = self.const(np.float32(0), output + "_lo"), self.const(np.float32(6), output + "_hi")
            self.nodes.append(helper.make_node("Clip", [raw, lo, hi], [output], name=output))

    # ops

    def convert(self) -> Any:
        from onnx import TensorProto, helper

        g = self.graph
        if g.InputsLength() != 1 or g.OutputsLength() != 1:
            raise GreenlessError(f"expected one input and one output, found {g.InputsLength()} and {g.OutputsLength()}")
        inp, out = g.Inputs(0), g.Outputs(0)
        in_name, out_name = self.name(inp), self.name(out)
        # Outside, the TFLite names and NHWC; inside, the same tensors in NCHW under a suffixed name.
        self.alias = {inp: in_name + "__nchw", out: out_name + "__nchw"}
        self.nodes.append(helper.make_node("Transpose", [in_name], [self.name(inp)], perm=[0, 3, 1, 2], name=self.name(inp)))
        for k in range(g.OperatorsLength()):
            self._op(g.Operators(k))
        self.nodes.append(helper.make_node("Transpose", [self.name(out)], [out_name], perm=[0, 2, 3, 1], name=out_name))
        return helper.make_graph(
            self.nodes, "selfie_segmentation",
            [helper.make_tensor_value_info(in_name, TensorProto.FLOAT, self.shape(inp))],
            [helper.make_tensor_value_info(out_name, TensorProto.FLOAT, self.shape(out))],
            self.inits)

    def _op(self, op: Any) -> None:
        tfl = self.tfl
        code_obj = self.model.OperatorCodes(op.OpcodeIndex())
        code = max(code_obj.BuiltinCode(), code_obj.DeprecatedBuiltinCode())
        kind = self.op_names.get(code, str(code))
        ins = [op.Inputs(j) for j in range(op.InputsLength())]
        out = op.Outputs(0)
        name = self.name(out)
        if kind == "DEQUANTIZE":  # float16 constants: widened once, here
            if ins[0] not in self.consts:
                raise GreenlessError(f"{name}: DEQUANTIZE of a non-constant tensor")
            self.consts[out] = self.consts[ins[0]].astype(np.float32)
        elif kind == "CONV_2D":
            o = tfl.Conv2DOptions()
            opts = op.BuiltinOptions()
            o.Init(opts.Bytes, opts.Pos)
            w = self.consts[ins[1]]  # O, kh, kw, I
            self._conv(ins, out, w.transpose(0, 3, 1, 2), group=1, padding=o.Padding(),
                       strides=(o.StrideH(), o.StrideW()), dilations=(o.DilationHFactor(), o.DilationWFactor()),
                       fused=o.FusedActivationFunction())
        elif kind == "DEPTHWISE_CONV_2D":
            o = tfl.DepthwiseConv2DOptions()
            opts = op.BuiltinOptions()
            o.Init(opts.Bytes, opts.Pos)
            w = self.consts[ins[1]]  # 1, kh, kw, C*m
            self._conv(ins, out, w.transpose(3, 0, 1, 2), group=self.shape(ins[0])[3], padding=o.Padding(),
                       strides=(o.StrideH(), o.StrideW()), dilations=(o.DilationHFactor(), o.DilationWFactor()),
                       fused=o.FusedActivationFunction())
        elif kind in ("ADD", "MUL"):
            o = tfl.AddOptions() if kind == "ADD" else tfl.MulOptions()
            opts = op.BuiltinOptions()
            o.Init(opts.Bytes, opts.Pos)
            self.node(kind.capitalize(), [self.operand(i) for i in ins], name, o.FusedActivationFunction())
        elif kind == "AVERAGE_POOL_2D":
            o = tfl.Pool2DOptions()
            opts = op.BuiltinOptions()
            o.Init(opts.Bytes, opts.Pos)
            k, s = (o.FilterHeight(), o.FilterWidth()), (o.StrideH(), o.StrideW())
            self.node("AveragePool", [self.name(ins[0])], name, o.FusedActivationFunction(), kernel_shape=list(k),
                      strides=list(s), pads=self._pads(ins[0], k, s, (1, 1), o.Padding()))
        elif kind == "RESIZE_BILINEAR":
            o = tfl.ResizeBilinearOptions()
            opts = op.BuiltinOptions()
            o.Init(opts.Bytes, opts.Pos)
            n, _, _, c = self.shape(ins[0])
            h, w = (int(v) for v in self.consts[ins[1]])
            mode = "align_corners" if o.AlignCorners() else "half_pixel" if o.HalfPixelCenters() else "asymmetric"
            sizes = self.const(np.array([n, c, h, w], np.int64), name + "_sizes")
            self.node("Resize", [self.name(ins[0]), "", "", sizes], name, mode="linear",
                      coordinate_transformation_mode=mode)
        elif kind in ("RELU", "LOGISTIC", "HARD_SWISH"):
            onnx_op = {"RELU": "Relu", "LOGISTIC": "Sigmoid", "HARD_SWISH": "HardSwish"}[kind]
            self.node(onnx_op, [self.name(ins[0])], name)
        elif kind == "CUSTOM" and code_obj.CustomCode() == b"Convolution2DTransposeBias":
            self._transpose_conv(op, ins, out)
        else:
            custom = code_obj.CustomCode().decode() if code_obj.CustomCode() else ""
            raise GreenlessError(f"{name}: unsupported TFLite op {kind} {custom}".rstrip())

    def _pads(self, x: int, kernel: tuple[int, int], strides: tuple[int, int], dilations: tuple[int, int],
              padding: int) -> list[int]:
        if padding == VALID:
            return [0, 0, 0, 0]
        _, h, w, _ = self.shape(x)
        (t, b), (l, r) = (_same_pads(h, kernel[0], strides[0], dilations[0]),
                          _same_pads(w, kernel[1], strides[1], dilations[1]))
        return [t, l, b, r]

    def _conv(self, ins: list[int], out: int, weight: np.ndarray, group: int, padding: int,
              strides: tuple[int, int], dilations: tuple[int, int], fused: int) -> None:
        name = self.name(out)
        inputs = [self.name(ins[0]), self.const(weight.astype(np.float32), name + "_w")]
        if len(ins) > 2 and ins[2] >= 0:
            inputs.append(self.const(self.consts[ins[2]].astype(np.float32), name + "_b"))
        kernel = tuple(weight.shape[2:])
        self.node("Conv", inputs, name, fused, group=group, kernel_shape=list(kernel), strides=list(strides),
                  dilations=list(dilations), pads=self._pads(ins[0], kernel, strides, dilations, padding))

    def _transpose_conv(self, op: Any, ins: list[int], out: int) -> None:
        """MediaPipe's ``Convolution2DTransposeBias``: a transposed convolution plus bias; its options are the
        raw bytes of TfLiteTransposeConvParams (padding, stride_w, stride_h; TfLitePadding: 1 SAME, 2 VALID)."""
        raw = op.CustomOptionsAsNumpy().tobytes()
        padding, stride_w, stride_h = struct.unpack("<3i", raw[:12])
        w = self.consts[ins[1]]  # O, kh, kw, I
        name = self.name(out)
        _, h_in, w_in, _ = self.shape(ins[0])
        _, h_out, w_out, _ = self.shape(out)
        kh, kw = w.shape[1:3]
        if padding == 1:  # SAME: the output is the input times the stride
            th, tw = max((h_in - 1) * stride_h + kh - h_out, 0), max((w_in - 1) * stride_w + kw - w_out, 0)
            pads = [th // 2, tw // 2, th - th // 2, tw - tw // 2]
        elif padding == 2:
            pads = [0, 0, 0, 0]
        else:
            raise GreenlessError(f"{name}: unknown transpose-convolution padding {padding}")
        inputs = [self.name(ins[0]), self.const(w.transpose(3, 0, 1, 2).astype(np.float32), name + "_w"),
                  self.const(self.consts[ins[2]].astype(np.float32), name + "_b")]
        self.node("ConvTranspose", inputs, name, kernel_shape=[kh, kw], strides=[stride_h, stride_w], pads=pads)


def model_doc(wheel_name: str, tflite_sha256: str) -> str:
    """The derived model's doc string: where its numbers come from."""
    return (f"MediaPipe selfie segmentation (Apache-2.0, Google), from {MEMBER} in {wheel_name} "
            f"(sha256 {tflite_sha256}), converted by greenless scripts/derive_guide.py")


def convert(tflite_bytes: bytes, doc: str) -> bytes:
    """The ONNX model (serialised) for a TFLite selfie-segmentation model; ``doc`` becomes its doc string."""
    import onnx
    from onnx import helper

    graph = _Converter(tflite_bytes).convert()
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="greenless scripts/derive_guide.py", doc_string=doc)
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model, full_check=True)
    return model.SerializeToString()


# ---------------------------------------------------------------------------------------------- the chain


def fetch_wheel(version: str, folder: Path) -> Path:
    """``pip download --no-deps mediapipe==VERSION`` (one platform's wheel) into ``folder``; its path."""
    folder.mkdir(parents=True, exist_ok=True)
    found = sorted(folder.glob(f"mediapipe-{version}-*.whl"))
    if found:
        return found[0]
    print(f"downloading mediapipe {version} (about 35 MB, not installed) into {folder} ...", file=sys.stderr)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", f"mediapipe=={version}",
           "--platform", PLATFORM, "--python-version", "3.11", "--only-binary=:all:", "-d", str(folder)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    found = sorted(folder.glob(f"mediapipe-{version}-*.whl"))
    if done.returncode or not found:
        last = (done.stderr.strip().splitlines() or ["no wheel written"])[-1]
        raise GreenlessError(f"pip download mediapipe=={version} failed ({last}); pass a downloaded wheel with --wheel")
    return found[0]


def read_member(wheel: Path) -> bytes:
    """The selfie-segmentation tflite inside a mediapipe wheel."""
    try:
        with zipfile.ZipFile(wheel) as zf:
            return zf.read(MEMBER)
    except (zipfile.BadZipFile, KeyError) as exc:
        raise GreenlessError(f"{wheel}: not a mediapipe wheel holding {MEMBER} ({exc})") from None


def compare(derived: Path, against: Path, images: list[Path]) -> tuple[float, float, list[str]]:
    """(max, mean) absolute difference of the two models' masks over ``images`` (squashed and letterboxed, as the
    guide runs them), and one printed row per image."""
    from greenless.media.images import load_rgb
    from greenless.pipeline.guide import SelfieSegmenter

    a, b = SelfieSegmenter(derived), SelfieSegmenter(against)
    worst, total, count, rows = 0.0, 0.0, 0, []
    for path in progress(images, "comparing masks"):
        rgb = load_rgb(path)
        for mode in ("squash", "pad"):
            diff = np.abs(a(rgb, mode) - b(rgb, mode))
            worst, total, count = max(worst, float(diff.max())), total + float(diff.sum()), count + diff.size
            rows.append(f"| {path.name} | {mode} | {diff.max():.2e} | {diff.mean():.2e} |")
    return worst, total / count, rows


def licence_text(chain: dict[str, str]) -> str:
    """The asset's licence file: the Apache-2.0 notice, what the file is, and how it was made."""
    return f"""selfie_segmentation.onnx: MediaPipe selfie segmentation (the general model, 256x256 RGB input), by Google.

Licensed under the Apache License, Version 2.0 (the "License"); you may not use this file except
in compliance with the License. You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software distributed under the License
is distributed on an "AS IS" BASIS, WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or
implied. See the License for the specific language governing permissions and limitations under the
License.

greenless ships this file as its semantic guide (greenless.pipeline.guide): a coarse person
mask fed to the matting network's hint channel, which the network refines.

Provenance (rebuild and check: pip install -e '.[guide]'; python scripts/derive_guide.py --install):
  source wheel:   {chain['wheel']} (PyPI, mediapipe {chain['version']}, Apache-2.0, The MediaPipe Authors)
  wheel sha256:   {chain['wheel_sha256']}
  source file:    {MEMBER} (float16 weights)
  tflite sha256:  {chain['tflite_sha256']}
  converter:      scripts/derive_guide.py (greenless, Apache-2.0): reads the flatbuffer with tflite {chain['tflite_pkg']}
                  (Apache-2.0), writes with onnx {chain['onnx_pkg']} (Apache-2.0); weights widened to float32,
                  ONNX opset {OPSET}, IR {IR_VERSION}, NHWC input and output as in the TFLite model
  checked:        {chain['checked']}
  sha256:         {chain['onnx_sha256']}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", type=Path, help="a downloaded mediapipe wheel (default: pip download it into --cache)")
    parser.add_argument("--version", default=VERSION, help="mediapipe version to download")
    parser.add_argument("--cache", type=Path, default=Path("runs/guide"), help="where the wheel is downloaded")
    parser.add_argument("-o", "--out", type=Path, default=Path("runs/guide/selfie_segmentation.onnx"),
                        help="the derived ONNX model")
    parser.add_argument("--against", type=Path, default=ASSET, help="model to compare with (default: the packaged one)")
    parser.add_argument("--images", type=Path, nargs="+",
                        default=[REPO.parent / "shared" / "data" / "portraits" / "image", REPO.parent / "shared" / "data" / "photos"],
                        help="image files or folders to compare the masks on")
    parser.add_argument("--tolerance", type=float, default=1e-3, help="largest mean |difference| that counts as a match")
    parser.add_argument("--install", action="store_true",
                        help="on a match, replace the packaged model and rewrite its licence file")
    args = parser.parse_args()

    for module in ("tflite", "onnx"):
        try:
            __import__(module)
        except ImportError:
            raise GreenlessError(f"the converter needs the {module!r} package: {install_hint('guide')}") from None
    need_path(args.against, "the model to compare with", "file")
    images: list[Path] = []
    for item in args.images:
        need_path(item, "the images to compare on", "any")
        images += sorted(p for p in item.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png")) if item.is_dir() else [item]
    if not images:
        raise GreenlessError(f"no .jpg or .png images in {', '.join(map(str, args.images))}")
    wheel = need_path(args.wheel, "the mediapipe wheel", "file") if args.wheel else fetch_wheel(args.version, args.cache)

    import onnx
    from importlib.metadata import version as pkg_version

    source = read_member(wheel)
    chain = {"wheel": wheel.name, "version": wheel.name.split("-")[1], "wheel_sha256": sha256(wheel),
             "tflite_sha256": sha256(source), "tflite_pkg": pkg_version("tflite"), "onnx_pkg": onnx.__version__}
    derived = convert(source, model_doc(wheel.name, chain["tflite_sha256"]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(args.out, derived)
    chain["onnx_sha256"] = sha256(derived)
    print(f"wheel   {wheel.name}  sha256 {chain['wheel_sha256']}")
    print(f"tflite  {MEMBER}  sha256 {chain['tflite_sha256']}")
    print(f"derived {args.out}  sha256 {chain['onnx_sha256']}  ({len(derived) / 1e3:.0f} KB)")

    worst, mean, rows = compare(args.out, args.against, images)
    print(f"\nderived against {args.against}, {len(images)} images:\n\n| image | view | max abs diff | mean abs diff |\n|---|---|---|---|")
    print("\n".join(rows))
    print(f"\nall: max abs diff {worst:.2e}, mean abs diff {mean:.2e} (tolerance {args.tolerance:g})")
    matches = mean < args.tolerance
    if not args.install:
        print("match" if matches else "NO MATCH", "(nothing installed; --install ships it on a match)")
        return
    if not matches:
        raise GreenlessError(f"mean abs diff {mean:.2e} is over {args.tolerance:g}: the packaged model is left as it is")
    if ASSET.read_bytes() == derived and chain["onnx_sha256"] in LICENCE.read_text():
        print(f"{ASSET.relative_to(REPO)} is already this file; its licence file records it: nothing changed")
        return
    against_sha = sha256(args.against)
    against = PREVIOUS.get(against_sha, f"{args.against.name} (sha256 {against_sha})")
    folders = sorted({os.path.relpath(p.parent, REPO) for p in images})
    chain["checked"] = (f"against {against}:\n                  max abs diff {worst:.1e}, mean {mean:.1e} of the masks on "
                        f"{len(images)} images ({', '.join(folders)}),\n                  squashed and letterboxed")
    write_bytes_atomic(ASSET, derived)
    write_bytes_atomic(LICENCE, licence_text(chain).encode())
    print(f"installed {ASSET.relative_to(REPO)} and rewrote {LICENCE.relative_to(REPO)}")


if __name__ == "__main__":
    run_script(main)
