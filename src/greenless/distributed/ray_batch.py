"""Scale-out batch matting on Ray Data: read a folder (local or object storage), matte in an actor pool, write PNGs.

Each actor holds one ``Matter`` (ONNX) and writes ``OUT/STEM.png`` exactly as ``greenless matte FOLDER -o OUT``
names and renders it, so a Ray run and a local run give the same files. Paths may be local folders or any
URI pyarrow understands (``s3://bucket/prefix``, ``gs://...``), read and written through pyarrow filesystems.
"""

from __future__ import annotations

import inspect
import math
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

import numpy as np

from greenless.errors import GreenlessError, first_line
from greenless.media.images import IMAGE_SUFFIXES, encode_png  # noqa: F401  (the package's one suffix list and PNG encoder)
from greenless.media.naming import clashing_stems, result_name


def filesystem_for(uri: str) -> tuple[Any, str]:
    """(pyarrow filesystem, path inside it) for a local path or a URI such as ``s3://bucket/prefix``."""
    from pyarrow import fs

    if "://" not in uri:
        return fs.LocalFileSystem(), os.path.abspath(uri)
    try:
        return fs.FileSystem.from_uri(uri)
    except Exception as exc:  # pyarrow raises ArrowInvalid / OSError for unknown schemes or missing credentials
        raise GreenlessError(f"{uri}: cannot open ({first_line(exc)})") from None


def list_images(uri: str) -> tuple[Any, list[str]]:
    """The image files directly inside a folder or prefix (not recursive, sorted), as ``greenless matte`` reads a folder."""
    from pyarrow import fs

    filesystem, base = filesystem_for(uri)
    info = filesystem.get_file_info(base)
    if info.type == fs.FileType.NotFound:
        raise GreenlessError(f"{uri}: folder not found")
    if info.type != fs.FileType.Directory:
        raise GreenlessError(f"{uri}: not a folder")
    entries = filesystem.get_file_info(fs.FileSelector(base, recursive=False))
    files = sorted(e.path for e in entries if e.type == fs.FileType.File and e.path.lower().endswith(IMAGE_SUFFIXES))
    if not files:
        raise GreenlessError(f"{uri}: no images (.jpg, .png, .webp, .bmp, .tif) in this folder")
    return filesystem, files


def write_atomic(filesystem: Any, path: str, data: bytes) -> None:
    """Write ``data`` so readers never see half a file: temp file + rename locally; one PUT on object stores.

    A failed write (a full disk, a lost connection) is one ``GreenlessError`` for this file and leaves no
    temporary file, as ``greenless matte`` does (the same local writer), so the job goes on with the others.
    """
    from pyarrow import fs

    from greenless.media.images import write_bytes_atomic

    if isinstance(filesystem, fs.LocalFileSystem):
        write_bytes_atomic(path, data)
        return
    try:
        with filesystem.open_output_stream(path) as stream:
            stream.write(data)
    except OSError as exc:  # pyarrow raises OSError subclasses for store and network failures
        raise GreenlessError(f"{path}: cannot write ({first_line(exc)})") from None


@dataclass
class JobSpec:
    """What every actor needs to know; small enough to ship to each one."""

    output_uri: str
    kind: str = "rgba"
    background: Any = "white"  # colour string, (r, g, b), or an RGB array for composite
    weights: str | None = None  # must exist on every node; None: the packaged model
    ref_size: int | None = None
    guide: str | None = None  # None: the weights' own
    refine: str | None = None  # the photo detail stage; None: the job's (band)
    threads: int = 1
    max_pixels: int = 100_000_000
    clashing_stems: frozenset[str] = field(default_factory=frozenset)
    input_names: frozenset[str] = field(default_factory=frozenset)


class MatteActor:
    """Ray Data callable class: one ``Matter`` per actor; a batch of (bytes, path) rows in, a status per row out."""

    def __init__(self, spec: JobSpec) -> None:
        from greenless.matter import Matter

        self.spec = spec
        self.matter = Matter(spec.weights, engine="onnx", ref_size=spec.ref_size, threads=spec.threads,
                             guide=spec.guide, refine=spec.refine)
        self.filesystem, self.out_base = filesystem_for(spec.output_uri)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from greenless.media.images import load_rgb
        from greenless.pipeline.compose import render

        outputs, errors = [], []
        for data, path in zip(batch["bytes"], batch["path"], strict=True):
            target = f"{self.out_base.rstrip('/')}/{result_name(str(path), self.spec.clashing_stems, self.spec.input_names)}"
            try:
                rgb = load_rgb(bytes(data), max_pixels=self.spec.max_pixels, name=str(path))
                alpha = self.matter.matte(rgb)
                write_atomic(self.filesystem, target, encode_png(render(self.spec.kind, rgb, alpha, self.spec.background)))
                outputs.append(target)
                errors.append("")
            except GreenlessError as exc:
                outputs.append("")
                errors.append(str(exc))
        return {"path": np.array([str(p) for p in batch["path"]], dtype=object),
                "output": np.array(outputs, dtype=object), "error": np.array(errors, dtype=object)}


@dataclass
class BatchRun:
    """A planned Ray job: how many files and actors; iterating ``rows()`` runs it and streams one status per file."""

    total: int
    actors: int
    dataset: Any

    def rows(self) -> Iterator[dict[str, str]]:
        """``{"path", "output", "error"}`` per file as results arrive (error is empty on success)."""
        for row in self.dataset.iter_rows():
            yield {"path": str(row["path"]), "output": str(row["output"]), "error": str(row["error"])}


def connect(address: str | None, quiet: bool = True) -> None:
    """Join a running Ray cluster (``auto``, ``ray://host:10001``) or start a local one; no-op when already joined."""
    import logging

    import ray

    if ray.is_initialized():
        return
    options: dict[str, Any] = {"include_dashboard": False} if address is None else {}
    try:
        ray.init(address=address, logging_level=logging.WARNING if quiet else logging.INFO, log_to_driver=not quiet,
                 **options)
    except Exception as exc:  # connection errors come as ConnectionError, RuntimeError or grpc errors
        raise GreenlessError(f"cannot connect to Ray at {address or 'a new local instance'}: {first_line(exc)}") from None


def run_batch(input_uri: str, output_uri: str, kind: str = "rgba", background: Any = "white",
              weights: str | None = None, ref_size: int | None = None, address: str | None = None,
              cpus_per_actor: float = 1.0, gpus_per_actor: float = 0.0, actors: int | None = None,
              batch_size: int = 8, max_pixels: int = 100_000_000, guide: str | None = None,
              refine: str | None = None) -> BatchRun:
    """Plan matting every image of ``input_uri`` into ``output_uri`` on Ray (run it by iterating ``rows()``).

    The actor pool has ``actors`` members, by default as many as the cluster's CPUs (or GPUs, when
    ``gpus_per_actor`` is set) allow; each onnxruntime session uses ``cpus_per_actor`` threads.
    """
    import ray

    for flag, value, least in (("--cpus-per-actor", cpus_per_actor, 0.1), ("--gpus-per-actor", gpus_per_actor, 0.0)):
        if not (math.isfinite(value) and value >= least):  # inf used to end in an OverflowError traceback
            raise GreenlessError(f"{flag} must be a finite number of at least {least:g}, not {value}")
    in_fs, files = list_images(input_uri)
    out_fs, out_base = filesystem_for(output_uri)
    _, in_base = filesystem_for(input_uri)
    same_folder = type(in_fs) is type(out_fs) and in_base.rstrip("/") == out_base.rstrip("/")
    clashing = clashing_stems(files)  # the naming rule of greenless.media.naming, as matte uses it
    names = frozenset(PurePosixPath(p).name.casefold() for p in files) if same_folder else frozenset()
    connect(address)
    resources = ray.cluster_resources()
    for flag, value, unit in (("--cpus-per-actor", cpus_per_actor, "CPU"), ("--gpus-per-actor", gpus_per_actor, "GPU")):
        if value > resources.get(unit, 0):  # no actor could ever be scheduled: the run would wait for ever
            raise GreenlessError(f"{flag} {value:g}: the Ray cluster has only {resources.get(unit, 0):g} {unit}s")
    try:  # only once the cluster can run the job: a refused run leaves no folder behind
        out_fs.create_dir(out_base, recursive=True)
    except Exception as exc:
        raise GreenlessError(f"{output_uri}: cannot create the output folder ({first_line(exc)})") from None
    if actors is None:
        if gpus_per_actor > 0:
            actors = int(resources.get("GPU", 0) // gpus_per_actor)
            if actors < 1:
                raise GreenlessError("--gpus-per-actor was given but the Ray cluster has no GPUs")
        else:
            actors = max(1, int(resources.get("CPU", 1) // cpus_per_actor))
    actors = max(1, min(actors, len(files)))
    spec = JobSpec(output_uri=output_uri, kind=kind, background=background, weights=weights, ref_size=ref_size,
                   guide=guide, refine=refine, threads=max(1, int(cpus_per_actor)), max_pixels=max_pixels, clashing_stems=clashing,
                   input_names=names)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False  # the CLI draws one bar for the whole job
    import logging

    logging.getLogger("ray.data").setLevel(logging.ERROR)  # no execution-plan chatter on stderr; failures still show
    # Reading is I/O: it takes no CPU slot, so an actor pool that fills every CPU cannot starve it (a deadlock).
    dataset = ray.data.read_binary_files(files, include_paths=True, filesystem=in_fs, num_cpus=0)
    # No actor restarts. Ray Data hands every actor its constructor arguments (its data context and this map
    # function) through the object store and turns restarts on, and Ray core logs an error line for each actor
    # made so ("If the arguments in the object store go out of scope or are lost, the actor restart will
    # fail", ray-project/ray#53727 and #57733): one on every successful run. max_restarts=0 removes the cause
    # and the line; an actor that dies (out of memory, a lost node) fails the job with one error line instead
    # of a restart Ray does not promise. Ray 2.60 deprecates passing it as a keyword with no named parameter
    # to replace it yet, so only that deprecation notice is ignored, and a Ray that no longer takes keywords
    # runs with its own default.
    takes_remote_args = any(p.kind is inspect.Parameter.VAR_KEYWORD
                            for p in inspect.signature(dataset.map_batches).parameters.values())
    remote_args: dict[str, Any] = {"max_restarts": 0} if takes_remote_args else {}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="`ray_remote_args` is deprecated")
        results = dataset.map_batches(MatteActor, fn_constructor_kwargs={"spec": spec}, batch_size=batch_size,
                                      compute=ray.data.ActorPoolStrategy(size=actors), num_cpus=cpus_per_actor,
                                      num_gpus=gpus_per_actor or None, batch_format="numpy",
                                      **remote_args)
    return BatchRun(len(files), actors, results)
