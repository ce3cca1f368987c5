"""Server settings: limits and model choice, passed to worker processes as JSON in an environment variable."""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass

from greenless.card import MAX_REF_SIZE
from greenless.errors import GreenlessError

ENV_VAR = "GREENLESS_SERVE_SETTINGS"


@dataclass
class ServeSettings:
    """What ``greenless serve`` was asked for; every limit has a safe default."""

    weights: str | None = None  # None: the packaged model
    engine: str = "onnx"
    ref_size: int | None = None  # None: the weights' own reference size
    threads: int | None = None  # onnxruntime intra-op threads per worker
    guide: str | None = None  # None: the weights' own (selfie for guided weights)
    refine: str | None = None  # the photo detail stage requests get unless they say: None: the job's (band)
    max_upload_mb: float = 20.0  # request body limit -> 413
    max_pixels: int = 40_000_000  # decoded image limit (decompression bombs) -> 413
    timeout: float = 60.0  # seconds from arrival to response, queue wait included -> 504
    max_concurrency: int = 1  # images matted at once per worker process
    queue_size: int = 16  # requests allowed to wait for a slot; more -> 503
    max_ref_size: int = MAX_REF_SIZE  # largest ref_size a client may ask for (the CLI's --ref-size bound)
    idle_timeout: float = 10.0  # seconds a connection may stay open with no request in progress -> closed
    max_connections: int = 512  # open connections per worker (lowered to fit the open-file limit)

    def __post_init__(self) -> None:
        """Every limit is a finite positive number (counts whole, the queue may be 0): ``--max-upload-mb inf``
        or ``nan`` used to start a server that answered every request 500. One error line names the flag."""
        for name in ("max_upload_mb", "timeout", "idle_timeout"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise GreenlessError(f"--{name.replace('_', '-')} must be a finite number above 0, not {value!r}")
        for name, least in (("max_pixels", 1), ("max_concurrency", 1), ("queue_size", 0), ("max_connections", 1),
                            ("max_ref_size", 32)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise GreenlessError(f"--{name.replace('_', '-')} must be a whole number of at least {least}, not "
                                     f"{value!r}")

    @property
    def max_upload_bytes(self) -> int:
        """The upload limit in bytes."""
        return int(self.max_upload_mb * 1024 * 1024)

    def to_env(self) -> str:
        """JSON form, for the ``GREENLESS_SERVE_SETTINGS`` variable read by each worker."""
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls) -> ServeSettings:
        """Settings from ``GREENLESS_SERVE_SETTINGS`` (defaults when it is unset)."""
        raw = os.environ.get(ENV_VAR)
        return cls(**json.loads(raw)) if raw else cls()
