"""The HTTP service: ``POST /v1/matte`` (image in, PNG out), ``GET /healthz``, the web page at ``/``.

A thin shell around one ``Matter`` per worker process. Requests pass an upload limit, a pixel limit and a
bounded queue in front of a fixed number of inference slots; the work itself (decode, matte, compose,
encode) runs in a thread so the event loop keeps answering. Every failure is JSON ``{"error": "..."}``.
Everything served is local: the API docs page (``/docs``) loads Swagger UI from the ``fastapi-offline``
package, never from a CDN, and the web page is one self-contained file.
"""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi_offline import FastAPIOffline
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from greenless.errors import GreenlessError
from greenless.media.images import ImageTooLarge, encode_png, load_rgb  # the package's one PNG encoder
from greenless.pipeline.compose import OUTPUT_KINDS, parse_background, render
from greenless.pipeline.detail import REFINERS
from greenless.serve.settings import ServeSettings


class ApiError(Exception):
    """A request the server refuses: HTTP ``status`` and a message for ``{"error": ...}``."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers


@dataclass
class MatteOptions:
    """What the client asked for, validated."""

    output: str
    background: tuple[int, int, int] | None  # colour for composite when no background image is sent
    ref_size: int | None
    refine: str | None = None  # the photo detail stage: "band" or "none" (None: the server's default)


def parse_options(values: Mapping[str, Any], settings: ServeSettings, has_background_image: bool) -> MatteOptions:
    """Validate ``output``, ``background``, ``ref_size`` and ``refine``; 400 when wrong.

    The one rule for both ways of asking: query-string values and multipart form fields arrive here as raw
    strings, so ``output=ALPHA`` (any case, as ``greenless matte --write`` takes it) or ``ref_size=big`` get
    the same answer whichever way they were sent.
    """
    output = (values.get("output") or "").strip().lower() or None
    background = (values.get("background") or "").strip() or None
    if output is not None and output not in OUTPUT_KINDS:
        raise ApiError(400, f"output must be one of {', '.join(OUTPUT_KINDS)}, not {output!r}")
    colour: tuple[int, int, int] | None = None
    if background is not None:
        try:  # the one background rule, colours only: never a path on the server
            colour = parse_background(background, files=False)  # type: ignore[assignment]
        except GreenlessError as exc:
            raise ApiError(400, str(exc)) from None
    wants_background = colour is not None or has_background_image
    if output is None:
        output = "composite" if wants_background else "rgba"
    if wants_background and output != "composite":
        raise ApiError(400, f"a background only applies to output=composite, not output={output}")
    if output == "composite" and not wants_background:
        colour = (255, 255, 255)
    ref_size = values.get("ref_size")
    if ref_size in (None, ""):
        ref = None
    else:
        try:
            ref = int(ref_size)
        except (TypeError, ValueError):
            raise ApiError(400, f"ref_size must be a whole number, not {ref_size!r}") from None
        if not 32 <= ref <= settings.max_ref_size:
            raise ApiError(400, f"ref_size must be between 32 and {settings.max_ref_size}, not {ref}")
    refine = (values.get("refine") or "").strip().lower() or None
    if refine is not None and refine not in REFINERS:
        raise ApiError(400, f"refine must be one of {', '.join(REFINERS)}, not {refine!r}")
    return MatteOptions(output, colour, ref, refine)


class Gate:
    """At most ``slots`` jobs at once and at most ``queue_size`` waiting; beyond that, refuse (503)."""

    def __init__(self, slots: int, queue_size: int) -> None:
        self.slots = slots
        self.queue_size = queue_size
        self.active = 0
        self.waiting = 0
        self._sem: asyncio.Semaphore | None = None

    async def acquire(self) -> None:
        """Take a slot, waiting in the queue if there is room in it; ``ApiError(503)`` when there is none."""
        if self._sem is None:
            self._sem = asyncio.Semaphore(self.slots)
        if self.active + self.waiting >= self.slots + self.queue_size:
            raise ApiError(503, f"server busy: {self.active} images in progress and {self.waiting} waiting; retry later",
                           {"Retry-After": "1"})
        self.waiting += 1
        try:
            await self._sem.acquire()
        finally:
            self.waiting -= 1
        self.active += 1

    def release(self) -> None:
        """Give a slot back (called when the worker thread finishes, even after a timeout)."""
        self.active -= 1
        assert self._sem is not None
        self._sem.release()


def decode_upload(data: bytes, what: str, settings: ServeSettings) -> np.ndarray:
    """Upload bytes -> HxWx3 uint8 RGB; 400 when empty, 413 over the pixel limit, 415 when not a readable image.

    The pixel limit is ``load_rgb``'s own check, made from the header before any pixel is decoded, at any
    size (Pillow's fixed ~179 MP bomb guard is not what decides); its refusal is worded for an HTTP client.
    """
    if not data:
        raise ApiError(400, f"the {what} is empty")
    try:
        return load_rgb(data, max_pixels=settings.max_pixels, name=what)
    except ImageTooLarge as exc:
        raise ApiError(413, f"the {what} is {exc.width}x{exc.height} = {exc.pixels} pixels, more than this "
                            f"server's limit of {exc.limit}") from None
    except GreenlessError as exc:
        raise ApiError(415, f"cannot decode the upload: {exc}") from None


def matte_request(matter: Any, image: bytes, background_image: bytes | None, options: MatteOptions, settings: ServeSettings) -> bytes:
    """The whole job for one request (runs in a worker thread): decode, matte, compose, encode PNG."""
    rgb = decode_upload(image, "image", settings)
    bg = decode_upload(background_image, "background image", settings) if background_image is not None else None
    if options.ref_size is not None and options.ref_size != matter.ref_size:
        matter = copy.copy(matter)  # shares the engine; only the size the network sees differs
        matter.ref_size = options.ref_size
    if options.refine is not None and options.refine != matter.refine:
        matter = copy.copy(matter)  # shares the engine; only the detail stage differs
        matter.refine = options.refine
    alpha = matter.matte(rgb)
    return encode_png(render(options.output, rgb, alpha, bg if bg is not None else options.background))


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing (413) as soon as it is known to exceed ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"upload of {int(declared)} bytes is over the limit of {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"upload is over the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def split_request(request: Request, body: bytes) -> tuple[bytes, bytes | None, dict[str, str]]:
    """(image bytes, background image bytes or None, form option fields) from a multipart or raw-body request."""
    ctype = request.headers.get("content-type", "").lower()
    if not ctype.startswith("multipart/form-data"):  # any other type (curl's default form type too) is the raw image
        return body, None, {}

    async def replay() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        form = await Request(request.scope, replay).form(max_files=2, max_fields=16)
    except Exception as exc:  # malformed multipart (bad boundary, truncated part, too many parts)
        raise ApiError(400, f"malformed multipart body: {getattr(exc, 'detail', None) or exc}") from None
    fields: dict[str, str] = {}
    files: dict[str, bytes] = {}
    for key, value in form.multi_items():
        if isinstance(value, str):
            fields[key] = value
        else:
            files[key] = await value.read()
    await form.close()
    if "file" not in files:
        raise ApiError(400, "multipart request without a 'file' part holding the image")
    return files["file"], files.get("background_image"), fields


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """The one error shape: ``{"error": message}``."""
    return JSONResponse({"error": message}, status_code=status, headers=headers)


# The three request options, documented once for both ways of sending them (query string, form fields).
# The server reads them as raw strings and parse_options validates them (so `output` is taken in any case).
_OPTIONS: dict[str, dict[str, Any]] = {
    "output": {"type": "string", "enum": list(OUTPUT_KINDS), "description":
               "rgba: cut-out with transparency (default); alpha: the matte as greyscale; foreground: the person's "
               "colours with the old background removed from soft edges (RGB; pair with alpha); composite: the "
               "person over `background` (default when a background is given)."},
    "background": {"type": "string", "example": "#00ff00", "description":
                   "Background colour for output=composite, e.g. `#00ff00` (write `%2300ff00` or `00ff00` in a URL) "
                   "or `white`."},
    "ref_size": {"type": "integer", "minimum": 32, "description":
                 "Short side the network sees, rounded to its stride (default: the model's own)."},
    "refine": {"type": "string", "enum": list(REFINERS), "description":
               "band: re-solve the edge band at full resolution from the photo (hair, soft edges; the default for "
               "photos, 1-2 s); none: the network's matte alone (faster)."},
}

_MATTE_BODY = {
    "parameters": [{"name": name, "in": "query", "required": False, "description": spec["description"],
                    "schema": {k: v for k, v in spec.items() if k != "description"}} for name, spec in _OPTIONS.items()],
    "requestBody": {
        "required": True,
        "description": "The photo, either as multipart/form-data (part `file`, optional `background_image`, and "
        "the options as form fields) or as the raw request body (options in the query string).",
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary", "description": "The photo (JPEG, PNG, WebP, ...)."},
                        "background_image": {"type": "string", "format": "binary",
                                             "description": "Optional background photo for output=composite (scaled to cover)."},
                        **_OPTIONS,
                    },
                }
            },
            "image/*": {"schema": {"type": "string", "format": "binary"}},
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        },
    },
    "responses": {
        "200": {"description": "The result as PNG.", "content": {"image/png": {}}},
        "400": {"description": "Bad option or empty / malformed request."},
        "413": {"description": "Upload over the size limit, or image over the pixel limit."},
        "415": {"description": "Not an image the server can decode."},
        "503": {"description": "All inference slots busy and the queue full; retry later."},
        "504": {"description": "Not finished within the server's timeout."},
    },
}


def create_app(settings: ServeSettings | None = None, matter: Any = None) -> FastAPI:
    """Build the FastAPI app. ``matter`` (a ``Matter``-like object) is made at startup from ``settings`` when not given."""
    settings = settings or ServeSettings()
    gate = Gate(settings.max_concurrency, settings.queue_size)
    page = (resources.files("greenless.serve") / "static" / "index.html").read_text(encoding="utf-8")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if matter is None:
            from greenless.matter import Matter

            app.state.matter = Matter(settings.weights, engine=settings.engine, ref_size=settings.ref_size,
                                      threads=settings.threads, guide=settings.guide,
                                      refine=settings.refine)
        else:
            app.state.matter = matter
        yield

    # FastAPIOffline serves Swagger UI (/docs) from files inside the fastapi-offline package (MIT; Swagger UI
    # itself Apache-2.0): greenless works offline, so no page may load a script, style or font from a CDN.
    # validatorUrl None: Swagger UI would otherwise send the schema to an online validator for a badge. ReDoc
    # is off: its bundle always loads the Redocly logo from a CDN, and /docs already shows the same schema.
    app = FastAPIOffline(title="greenless", summary="Trimap-free portrait matting (MODNet) over HTTP.",
                         version=_version(), lifespan=lifespan, redoc_url=None,
                         swagger_ui_parameters={"validatorUrl": None})

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.message, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ())[1:]) or "request"
            parts.append(f"{where}: {err.get('msg', 'invalid')}")
        return error_response(400, "; ".join(parts) or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_response(exc.status_code, str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        return error_response(500, f"internal error ({type(exc).__name__}); the server log has details")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse(page)

    @app.get("/healthz", summary="Liveness and load")
    async def healthz(request: Request) -> dict[str, Any]:
        """Whether the model is loaded, and how many images are in progress and waiting in this worker."""
        m = request.app.state.matter
        return {"status": "ok", "model": str(getattr(m, "weights", "")).rsplit("/", 1)[-1],
                "engine": getattr(getattr(m, "engine", None), "name", None), "ref_size": getattr(m, "ref_size", None),
                "active": gate.active, "waiting": gate.waiting, "slots": gate.slots, "queue_size": gate.queue_size}

    @app.post("/v1/matte", summary="Cut the person out of a photo", openapi_extra=_MATTE_BODY,
              response_class=Response)
    async def matte(request: Request) -> Response:
        """Image in (multipart part `file`, or the raw body), PNG out. Form fields override query options."""
        started = time.perf_counter()
        try:
            async with asyncio.timeout(settings.timeout):
                body = await read_body(request, settings.max_upload_bytes)
                image, bg_image, fields = await split_request(request, body)
                # Query options as raw strings, then form fields over them: parse_options is the one rule for both.
                values = {**{name: request.query_params.get(name) for name in _OPTIONS}, **fields}
                options = parse_options(values, settings, bg_image is not None)
                await gate.acquire()
                job = asyncio.ensure_future(run_in_threadpool(matte_request, request.app.state.matter, image, bg_image,
                                                              options, settings))
                job.add_done_callback(lambda done: _finish(gate, done))  # the slot stays taken until the thread ends
                png = await asyncio.shield(job)
        except TimeoutError:
            return error_response(504, f"not finished within the server's timeout of {settings.timeout:g} s")
        elapsed = (time.perf_counter() - started) * 1000.0
        return Response(png, media_type="image/png", headers={"X-Greenless-Time-Ms": f"{elapsed:.0f}"})

    return app


def _finish(gate: Gate, job: asyncio.Future) -> None:
    """Free the job's slot; fetch its exception so one that ended after a timeout is not logged as lost."""
    gate.release()
    if not job.cancelled():
        job.exception()


def _version() -> str:
    from greenless import __version__

    return __version__


def app_from_env() -> FastAPI:
    """App factory for ``uvicorn --factory`` worker processes: settings come from ``GREENLESS_SERVE_SETTINGS``."""
    return create_app(ServeSettings.from_env())
