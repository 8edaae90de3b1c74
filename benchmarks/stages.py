"""Where /identify spends its time on the stress set, stage by stage, with the accuracy it buys.

    PYTHONPATH=. .venv/bin/python benchmarks/stages.py --sets medium          # speed profile
    PYTHONPATH=. .venv/bin/python benchmarks/stages.py --sets all --report r.md

In process (no HTTP): the engine with default settings (``CRATEWATCH_*`` variables apply) on
``runs/stress`` (built by ``benchmarks/stress_data.py``), one query at a time. Per set: P@1,
open-set acceptances, the gate's share, how many candidates were verified, and the median / p90
of every ``timings_ms`` stage. A quick check that a speed change keeps the accuracy;
``benchmarks/stress.py`` remains the acceptance report (it adds the baselines).
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from service.config import Settings
from service.engine import Engine
from service.metrics import Metrics
from training.evaluate import QueryRow, read_query_set

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("decode", "embed", "search", "features", "votes", "verify", "total", "cpu")
SETS = ("easy", "medium", "hard", "loose", "unknown")


@dataclass
class SetStats:
    name: str
    n: int = 0
    right: int = 0  # first match is the crop's album
    accepted: int = 0  # ``identified`` not null
    accepted_right: int = 0
    gated: int = 0
    voted: int = 0  # local queries that needed the descriptor votes
    verified: list[int] = field(default_factory=list)  # candidates verified per local query
    ms: dict[str, list[float]] = field(default_factory=lambda: {s: [] for s in STAGES})


def rows_of(root: Path, name: str, limit: int | None) -> list[QueryRow]:
    """The report half's crops of one set (a level of the tight crops, loose, or unknown)."""
    folder = {"loose": "loose", "unknown": "unknown"}.get(name, "tight")
    rows = read_query_set(root / "queries" / "report" / folder)
    if folder == "tight":
        rows = [r for r in rows if r.level == name]
    return rows[:limit] if limit else rows


def run(engine: Engine, name: str, rows: list[QueryRow]) -> SetStats:
    st = SetStats(name)
    cal = engine.calibration
    for r in rows:
        data = r.path.read_bytes()
        t0, c0 = time.perf_counter(), time.process_time()
        res = engine.retrieve(data, 5, cal)
        total, cpu = (time.perf_counter() - t0) * 1e3, (time.process_time() - c0) * 1e3
        for stage, ms in (res.timings_ms | {"total": total, "cpu": cpu}).items():
            st.ms.setdefault(stage, []).append(ms)
        st.n += 1
        first = res.matches[0].album.album_id if res.matches else None
        st.right += first == r.album_id
        st.accepted += res.decision.identified is not None
        st.accepted_right += res.decision.identified == r.album_id
        if res.decision.decided_by == "embedding":
            st.gated += 1
        else:
            st.verified.append(len(res.checked))
            st.voted += "votes" in res.timings_ms
    return st


def table(stats: list[SetStats]) -> list[str]:
    head = ["set", "n", "P@1", "accepted", "accepted right", "gate", "votes ran",
            "verified (median)"]
    head += [f"{s} p50/p90" for s in STAGES]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for st in stats:
        d = max(1, st.n)
        cells = [st.name, str(st.n), f"{st.right / d:.3f}", f"{st.accepted / d:.3f}",
                 f"{st.accepted_right / d:.3f}", f"{st.gated / d:.3f}", f"{st.voted / d:.3f}",
                 f"{statistics.median(st.verified):.0f}" if st.verified else "-"]
        for s in STAGES:
            v = st.ms.get(s) or []
            cells.append(f"{np.percentile(v, 50):.1f} / {np.percentile(v, 90):.1f}" if v else "-")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, default=ROOT / "runs" / "stress")
    ap.add_argument("--model", type=Path, default=ROOT / "models/cratewatch-embedder.onnx")
    ap.add_argument("--sets", default="medium", help=f"comma list of {SETS}, or all")
    ap.add_argument("--limit", type=int, default=None, help="crops per set")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--report", type=Path, help="also write the table here (markdown)")
    a = ap.parse_args()
    names = list(SETS) if a.sets == "all" else a.sets.split(",")
    settings = Settings(catalog=a.root / "catalog", data=a.root / "data", model=a.model,
                        threads=a.threads)
    engine = Engine(settings, Metrics())
    engine.load()
    assert engine.ready, engine.error
    print(f"loaded in {engine.stats.get('load_seconds')} s: {engine.stats}")
    try:
        for r in rows_of(a.root, names[0], 10):  # warm-up: first-call allocations
            engine.retrieve(r.path.read_bytes(), 5, engine.calibration)
        stats = [run(engine, n, rows_of(a.root, n, a.limit)) for n in names]
    finally:
        engine.close()
    lines = table(stats)
    print("\n".join(lines))
    if a.report:
        a.report.parent.mkdir(parents=True, exist_ok=True)
        a.report.write_text(
            "# Per-stage profile (benchmarks/stages.py)\n\n"
            f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, in process, one "
            f"query at a time, model `{a.model.name}` ({engine.model_version}).\n\n"
            + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
