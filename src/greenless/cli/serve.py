"""``greenless serve``: the HTTP API and web page (FastAPI + uvicorn, the ``serve`` extra)."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from greenless.cli import (
    EngineName,
    app,
    engine_option,
    guide_option,
    lowered_to_cpus,
    model_option,
    ref_size_option,
    refine_option,
    threads_option,
)
from greenless.serve.settings import ServeSettings

DEFAULTS = ServeSettings()  # one copy of every limit's default: the flags below show these


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (0.0.0.0 for every interface)."),
    port: int = typer.Option(8000, "--port", help="TCP port."),
    workers: int = typer.Option(1, "--workers", min=1, callback=lowered_to_cpus,
                                help="Worker processes, each with its own model."),
    weights: Path | None = typer.Option(None, "-w", "--weights", help="Model weights (default: the packaged model)."),
    model: str | None = model_option(),
    guide: str | None = guide_option(),
    refine: str | None = refine_option(),
    engine: EngineName = engine_option(),
    ref_size: int | None = ref_size_option("Default short side the network sees (default: the weights' own)."),
    threads: int | None = threads_option("Engine threads per worker"),
    max_upload_mb: float = typer.Option(DEFAULTS.max_upload_mb, "--max-upload-mb", min=0.001,
                                        help="Largest request body (413 above)."),
    max_pixels: int = typer.Option(DEFAULTS.max_pixels, "--max-pixels", min=1,
                                   help="Largest image, width x height (413 above)."),
    timeout: float = typer.Option(DEFAULTS.timeout, "--timeout", min=0.1,
                                  help="Seconds per request, queueing included (504 after)."),
    max_concurrency: int = typer.Option(DEFAULTS.max_concurrency, "--max-concurrency", min=1,
                                        help="Images matted at once per worker."),
    queue_size: int = typer.Option(DEFAULTS.queue_size, "--queue-size", min=0,
                                   help="Requests that may wait per worker (503 beyond)."),
    idle_timeout: float = typer.Option(DEFAULTS.idle_timeout, "--idle-timeout", min=0.1,
                                       help="Seconds a connection may stay open with no request in progress "
                                       "(before its first, between two, or while its headers trickle in)."),
    max_connections: int = typer.Option(DEFAULTS.max_connections, "--max-connections", min=1,
                                        help="Open connections per worker (kept under the open-file limit); over "
                                        "it the connection idle the longest is closed."),
    log_level: str = typer.Option("info", "--log-level", help="uvicorn log level."),
) -> None:
    """Serve POST /v1/matte (image in, PNG out), GET /healthz, the API docs at /docs and a web page at /.

    Everything is served from the package (the docs pages too: no CDN). Idle and slow connections are
    closed after --idle-timeout and at most --max-connections stay open per worker, so a flood of idle
    sockets cannot use up the open-file limit.
    """
    from greenless.errors import GreenlessError
    from greenless.matter import Matter
    from greenless.registry import resolve_weights

    _need_serve_extra()
    from greenless.serve.listen import check_listen, check_log_level

    log_level = check_log_level(log_level)
    weights = resolve_weights(weights, model, engine, job=None)
    if weights is not None and not weights.is_file():
        raise GreenlessError(f"{weights}: weights file not found")
    check_listen(host, port)  # a bad --host or a port in use: one line now, not uvicorn's start-up log and exit 3
    settings = ServeSettings(
        weights=str(weights) if weights else None, engine=engine.value, ref_size=ref_size, threads=threads, guide=guide,
        refine=refine, max_upload_mb=max_upload_mb, max_pixels=max_pixels, timeout=timeout, max_concurrency=max_concurrency,
        queue_size=queue_size, idle_timeout=idle_timeout, max_connections=_capped(max_connections),
    )
    # Load the model once here so a bad weights file fails now, with one line, not in every worker (only _run holds it).
    matter = Matter(settings.weights, engine=engine, ref_size=ref_size, threads=threads, guide=guide, refine=refine)
    _run(settings, matter, host, port, workers, log_level)


def _need_serve_extra() -> None:
    """One error line naming the extra when FastAPI or uvicorn is missing."""
    from greenless.errors import GreenlessError, install_hint

    try:
        import uvicorn  # noqa: F401

        from greenless.serve.app import create_app  # noqa: F401
    except ImportError as exc:
        raise GreenlessError(f"serve needs the serve extra ({exc.name} is missing): {install_hint('serve')}") from None


def _capped(max_connections: int) -> int:
    """``--max-connections`` kept under the open-file limit, with a note when it is lowered."""
    from greenless.serve.connections import connection_cap

    cap = connection_cap(max_connections)
    if cap < max_connections:
        typer.echo(f"note: --max-connections lowered from {max_connections} to {cap} per worker to stay under the "
                   "open-file limit (raise it with ulimit -n)", err=True)
    return cap


def _run(settings: ServeSettings, matter: object, host: str, port: int, workers: int, log_level: str) -> None:
    """uvicorn with one app (``matter`` in this process) or ``workers`` processes, each loading its own model."""
    import uvicorn

    from greenless.errors import GreenlessError
    from greenless.serve.app import create_app
    from greenless.serve.connections import uvicorn_options
    from greenless.serve.settings import ENV_VAR

    try:
        if workers == 1:
            uvicorn.run(create_app(settings, matter=matter), host=host, port=port, log_level=log_level,
                        **uvicorn_options(settings))
        else:
            del matter  # each worker process loads its own
            os.environ[ENV_VAR] = settings.to_env()
            uvicorn.run("greenless.serve.app:app_from_env", factory=True, host=host, port=port, workers=workers,
                        log_level=log_level, **uvicorn_options(settings))
    except SystemExit as exc:  # uvicorn exits 3 when it cannot start (the port taken since check_listen)
        if exc.code == 3:
            raise GreenlessError(f"the server could not start on {host}:{port} (see uvicorn's message above)") from None
        raise
