"""Sizing benchmark: server memory, startup time and data size against catalog size.

    .venv/bin/python benchmarks/sizing.py --albums 40 10000

Starts ``cratewatch serve`` (the bundled model unless --model) on generated catalogs of each
size, waits for /readyz and for the re-rank feature warm-up, then reports RSS, first-start and
cached-restart load time and the data directory's size. Writes benchmarks/reports/sizing.md.
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time
from pathlib import Path

from service.testing.images import make_catalog
from service.testing.server import LiveServer, rss_mb

ROOT = Path(__file__).resolve().parents[1]

WARM = re.compile(r"re-rank features of (\d+) covers ready in ([\d.]+) s")


def dir_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def wait_warm(server: LiveServer, timeout_s: float) -> float | None:
    """Seconds a background re-rank warm-up took, from the server log; None when none is logged
    within ``timeout_s`` (re-rank off, or local features computed before ready)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if m := WARM.search(server.log()):
            return float(m.group(2))
        time.sleep(0.5)
    return None


def measure(n: int, model: Path, threads: int, work: Path, warm_timeout_s: float) -> str:
    catalog = work / f"cat-{n}"
    make_catalog(catalog, n=n, seed=7, size=256)
    server = LiveServer(catalog, work / f"data-{n}", model, work / "logs",
                        env={"CRATEWATCH_THREADS": str(threads)})
    server.start(timeout_s=3600)
    first = server.wait_ready()["load_seconds"]
    assert server.proc is not None
    warm = wait_warm(server, warm_timeout_s)
    rss = rss_mb(server.proc.pid)
    server.stop()
    server.start(timeout_s=3600)
    again = server.wait_ready()["load_seconds"]
    server.stop()
    return (f"| {n} | {rss:.0f} | {first} | {again} | "
            f"{'-' if warm is None else f'{warm:.1f}'} | {dir_mb(work / f'data-{n}'):.1f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--albums", type=int, nargs="+", default=[40, 10_000])
    ap.add_argument("--model", type=Path, default=ROOT / "models/cratewatch-embedder.onnx")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warm-timeout", type=float, default=30.0,
                    help="seconds to wait for a background re-rank warm-up line after ready")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/reports/sizing.md")
    a = ap.parse_args()
    lines = ["# Sizing", "", f"Model `{a.model.name}`, {a.threads} ORT threads, re-rank on "
             "(default), generated 256 px covers.", "",
             "| albums | RSS MB (ready, warm) | first start s | cached restart s "
             "| re-rank warm-up s (- : none after ready) | data dir MB |",
             "|---|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        for n in a.albums:
            line = measure(n, a.model, a.threads, Path(tmp), a.warm_timeout)
            print(line, flush=True)
            lines.append(line)
    lines += ["", f"Reproduce: `.venv/bin/python benchmarks/sizing.py --albums "
              f"{' '.join(map(str, a.albums))} --out {a.out.name}` (measured "
              f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})"]
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
