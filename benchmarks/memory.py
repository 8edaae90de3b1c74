"""Server memory under many large identify requests, with and without ``MALLOC_ARENA_MAX=2``.

    .venv/bin/python benchmarks/memory.py --requests 1000 --concurrency 8 --megapixels 15

Starts a real ``cratewatch serve`` (bundled model, the procedural demo catalog, default
settings) once per allocator setting, sends ``--requests`` large JPEG photos of covers at
``--concurrency``, and samples the server's RSS (``/proc``) every ``--every`` requests and again
after a short idle. Not run in CI (minutes of CPU); writes benchmarks/reports/memory.md.
"""

from __future__ import annotations

import argparse
import io
import shlex
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
from PIL import Image, ImageFilter

from service.demo import write_demo_catalog
from service.testing.server import LiveServer, rss_mb

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = {"glibc default": None, "MALLOC_ARENA_MAX=2": "2"}


def large_photos(catalog: Path, megapixels: float, count: int = 4) -> list[bytes]:
    """Covers blown up to a 4:3 photo of ``megapixels``, with sensor-like noise (JPEG q90)."""
    width = int((megapixels * 1e6 * 4 / 3) ** 0.5)
    height = width * 3 // 4
    rng = np.random.default_rng(0)
    photos = []
    for path in sorted((catalog / "images").glob("*.jpg"))[:count]:
        img = Image.open(path).convert("RGB").resize((width, height), Image.Resampling.BICUBIC)
        noise = rng.normal(0, 6, size=(height, width, 1)).astype(np.float32)
        arr = np.clip(np.asarray(img, dtype=np.float32) + noise, 0, 255).astype(np.uint8)
        buf = io.BytesIO()
        Image.fromarray(arr).filter(ImageFilter.SMOOTH).save(buf, format="JPEG", quality=90)
        photos.append(buf.getvalue())
    return photos


def run(label: str, arena: str | None, catalog: Path, photos: list[bytes],
        args: argparse.Namespace, work: Path) -> dict[str, object]:
    server = LiveServer(catalog, work / label.replace(" ", "_") / "data", args.model,
                        work / "logs")
    server.env.pop("MALLOC_ARENA_MAX", None)
    server.env.pop("CRATEWATCH_THREADS", None)  # the service's default: CPUs it may use
    if arena is not None:
        server.env["MALLOC_ARENA_MAX"] = arena
    if args.server_src is not None:  # serve another checkout's code (e.g. before a fix)
        server.env["PYTHONPATH"] = str(args.server_src)
    server.start(timeout_s=300)
    time.sleep(args.warm_s)  # let the background re-rank warm-up of the covers finish
    assert server.proc is not None
    pid = server.proc.pid
    samples = [(0, rss_mb(pid))]
    errors = 0

    def one(i: int) -> int:
        r = httpx.post(f"{server.url}/identify", timeout=120,
                       files={"image": ("photo.jpg", photos[i % len(photos)], "image/jpeg")})
        return r.status_code

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=args.concurrency) as pool:
        for done in range(0, args.requests, args.every):
            batch = range(done, min(args.requests, done + args.every))
            errors += sum(code != 200 for code in pool.map(one, batch))
            samples.append((batch[-1] + 1, rss_mb(pid)))
    seconds = time.perf_counter() - started
    time.sleep(args.idle_s)
    idle = rss_mb(pid)
    server.stop()
    print(f"{label}: start {samples[0][1]:.0f} MB, peak {max(r for _, r in samples):.0f} MB, "
          f"end {samples[-1][1]:.0f} MB, idle {idle:.0f} MB, errors {errors}", flush=True)
    return {"label": label, "samples": samples, "idle": idle, "errors": errors,
            "seconds": seconds}


def report(results: list[dict[str, object]], args: argparse.Namespace, photo_mb: float) -> str:
    lines = ["# Memory under large identify requests", "",
             f"Command: `.venv/bin/python benchmarks/memory.py {shlex.join(sys.argv[1:])}`  ",
             f"{args.requests} requests of {args.megapixels:g}-megapixel JPEG photos "
             f"({photo_mb:.1f} MB each) at concurrency {args.concurrency}, bundled model, demo "
             "catalog, default settings (re-rank on), client on the same machine. RSS of the "
             "server process from /proc, MB."
             + (f" Server code: {args.server_src}." if args.server_src else ""), "",
             "| allocator | RSS ready | peak | after last request | after "
             f"{args.idle_s:g} s idle | errors | req/s |", "|---|---|---|---|---|---|---|"]
    for r in results:
        samples = r["samples"]
        assert isinstance(samples, list)
        lines.append(f"| {r['label']} | {samples[0][1]:.0f} | {max(m for _, m in samples):.0f} "
                     f"| {samples[-1][1]:.0f} | {r['idle']:.0f} | {r['errors']} "
                     f"| {args.requests / float(str(r['seconds'])):.1f} |")
    lines += ["", "RSS (MB) after N requests:", "",
              "| requests | " + " | ".join(str(r["label"]) for r in results) + " |",
              "|---|" + "---|" * len(results)]
    first = results[0]["samples"]
    assert isinstance(first, list)
    for i, (n, _) in enumerate(first):
        row = [f"{r['samples'][i][1]:.0f}" for r in results]  # type: ignore[index]
        lines.append(f"| {n} | " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, default=1000)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--megapixels", type=float, default=15.0)
    p.add_argument("--every", type=int, default=100, help="sample RSS every N requests")
    p.add_argument("--warm-s", type=float, default=5.0)
    p.add_argument("--idle-s", type=float, default=10.0)
    p.add_argument("--model", type=Path, default=ROOT / "models/cratewatch-embedder.onnx")
    p.add_argument("--server-src", type=Path, help="PYTHONPATH of the server: another checkout")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks/reports/memory.md")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        write_demo_catalog(work / "catalog")
        photos = large_photos(work / "catalog", args.megapixels)
        results = [run(label, arena, work / "catalog", photos, args, work)
                   for label, arena in SETTINGS.items()]
    text = report(results, args, sum(map(len, photos)) / len(photos) / 1e6)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
