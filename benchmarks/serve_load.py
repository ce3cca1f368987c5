"""Load test of ``greenless serve`` on loopback: N requests of a small image, server RSS at start/middle/end.

Starts the real server (``python -m greenless serve``) in a subprocess on a free 127.0.0.1 port, warms it up,
then sends ``--requests`` POST /v1/matte calls from ``--clients`` threads and prints throughput, latency
percentiles, status counts and the server's resident memory along the way (it should stay flat).

    python benchmarks/serve_load.py --requests 1000 --clients 4

Needs the serve extra and httpx and psutil (both in the test extra).
"""

from __future__ import annotations

import argparse
import io
import os
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from PIL import Image

from greenless.cli.script import need_path, run_script
from greenless.errors import GreenlessError

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def small_jpeg(src: Path, width: int) -> bytes:
    """A real portrait photo scaled to ``width`` pixels wide, as JPEG bytes."""
    im = Image.open(src).convert("RGB")
    im = im.resize((width, round(im.height * width / im.width)))
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def rss_mb(proc: Any) -> float:
    """Resident memory of the server and its children (worker processes), in MiB."""
    procs = [proc, *proc.children(recursive=True)]
    return sum(p.memory_info().rss for p in procs) / 2**20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--clients", type=int, default=4, help="concurrent client threads")
    ap.add_argument("--width", type=int, default=320, help="width of the test image in pixels")
    ap.add_argument("--output", default="rgba", help="output= option of each request")
    ap.add_argument("--server-args", default="--max-concurrency 1 --queue-size 64",
                    help="extra arguments for greenless serve")
    ap.add_argument("--image", type=Path, default=None,
                    help="the photo each request sends, scaled to --width (default: the first of ../shared/data/photos)")
    args = ap.parse_args()
    if args.image is None:
        photos = sorted(need_path(SHARED / "photos", "the shared photos (or pass --image)", "dir").glob("*.jpg"))
        if not photos:
            raise GreenlessError(f"{SHARED / 'photos'}: no .jpg photos (pass --image)")
        args.image = photos[0]
    need_path(args.image, "the test image, --image", "file")
    try:
        import httpx
        import psutil
    except ImportError as exc:
        raise GreenlessError(f"the load test needs {exc.name}: pip install httpx psutil (both in the test extra)") from None

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in [str(Path(__file__).resolve().parents[1] / "src"), os.environ.get("PYTHONPATH", "")] if p)}
    cmd = [sys.executable, "-m", "greenless", "serve", "--port", str(port), "--log-level", "warning",
           *args.server_args.split()]
    server = subprocess.Popen(cmd, env=env)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("server did not start")
            time.sleep(0.2)
        proc = psutil.Process(server.pid)
        image = small_jpeg(args.image, args.width)
        with httpx.Client(timeout=120) as client:
            for _ in range(10):  # warm-up: sessions, arenas, thread pools
                client.post(f"{url}/v1/matte", params={"output": args.output}, content=image).raise_for_status()
        samples = [(0, rss_mb(proc))]
        statuses: Counter[int] = Counter()
        latencies: list[float] = []
        lock = threading.Lock()
        counter = iter(range(args.requests))
        marks = {args.requests // 4, args.requests // 2, 3 * args.requests // 4}

        def client_loop() -> None:
            with httpx.Client(timeout=120) as client:
                for i in counter:
                    sent = time.perf_counter()
                    r = client.post(f"{url}/v1/matte", params={"output": args.output}, content=image)
                    dt = time.perf_counter() - sent
                    with lock:
                        statuses[r.status_code] += 1
                        latencies.append(dt)
                        if i in marks:
                            samples.append((i, rss_mb(proc)))
                        done = len(latencies)
                        if done % 100 == 0:
                            print(f"  {done}/{args.requests} requests, {time.perf_counter() - started:.0f} s", file=sys.stderr)

        started = time.perf_counter()
        threads = [threading.Thread(target=client_loop) for _ in range(args.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - started
        samples.append((args.requests, rss_mb(proc)))
    finally:
        server.terminate()
        server.wait(30)

    latencies.sort()
    w, h = Image.open(io.BytesIO(image)).size
    print(f"image {w}x{h} JPEG ({len(image)} bytes), output={args.output}, {args.requests} requests, "
          f"{args.clients} clients, server: {' '.join(cmd[3:])}")
    print(f"statuses: {dict(statuses)}")
    print(f"throughput: {args.requests / wall:.1f} req/s over {wall:.1f} s; latency p50 {latencies[len(latencies) // 2] * 1000:.0f} ms, "
          f"p95 {latencies[int(len(latencies) * 0.95)] * 1000:.0f} ms, max {latencies[-1] * 1000:.0f} ms")
    print("| after request | server RSS (MiB) |\n|---:|---:|")
    for i, mb in samples:
        print(f"| {i} | {mb:.1f} |")
    growth = samples[-1][1] - samples[0][1]
    print(f"RSS change start -> end: {growth:+.1f} MiB")


if __name__ == "__main__":
    run_script(main)
