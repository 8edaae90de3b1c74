"""Re-rank benchmark: P@1/P@5 and latency of the live identify path, with and without re-rank.

    .venv/bin/python benchmarks/rerank.py --queries runs/queries-heldout-medium \
        --catalog ../shared/data/covers --top-k 10 20

Runs the service's own ``Engine`` (decode -> embed -> FAISS -> optional geometric re-rank) on
every query of a ``cratewatch-train synth`` set, so the figures are exactly what ``/identify``
returns; only HTTP is left out. Writes ``benchmarks/reports/rerank.md``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from service.config import Settings
from service.engine import Engine
from service.metrics import Metrics
from training.evaluate import QueryRow, read_query_set
from training.metrics import top_k_accuracy

ROOT = Path(__file__).resolve().parents[1]


def run(settings: Settings, rows: list[QueryRow]) -> dict[str, float]:
    """Top-1/top-5 accuracy (P@1, P@5) and median/p90 per-stage milliseconds over ``rows``."""
    engine = Engine(settings, Metrics())
    engine.load()
    if not engine.ready:
        raise SystemExit(f"engine failed to load: {engine.error}")
    ranked: list[list[str]] = []
    stages: dict[str, list[float]] = {}
    for row in rows:
        body = engine.identify(row.path.read_bytes(), 5)
        ranked.append([m["album_id"] for m in body["matches"]])
        for stage, ms in body["timings_ms"].items():
            stages.setdefault(stage, []).append(ms)
        stages.setdefault("total", []).append(sum(body["timings_ms"].values()))
    engine.close()
    truth = [r.album_id for r in rows]
    out = {"p@1": top_k_accuracy(ranked, truth, 1), "p@5": top_k_accuracy(ranked, truth, 5)}
    for stage, values in stages.items():
        out[f"{stage}_p50"] = statistics.median(values)
        out[f"{stage}_p90"] = statistics.quantiles(values, n=10)[-1] if len(values) > 1 else 0.0
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--queries", type=Path, nargs="+", required=True)
    ap.add_argument("--catalog", type=Path, default=ROOT.parent / "shared/data/covers")
    ap.add_argument("--model", type=Path, default=ROOT / "models/cratewatch-embedder.onnx")
    ap.add_argument("--top-k", type=int, nargs="+", default=[10, 20])
    ap.add_argument("--accept-inliers", type=int, nargs="+", default=[40],
                    help="early-accept thresholds to try (0 = verify every candidate)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/reports/rerank.md")
    a = ap.parse_args()
    lines = ["# Re-rank benchmark", "",
             f"Model `{a.model.name}`, catalog `{a.catalog}`, {a.threads} ORT threads; "
             "latencies are the service's own `timings_ms` (median / p90, ms).", "",
             "| queries | re-rank | P@1 | P@5 | embed | search | verify | total |",
             "|---|---|---|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as data:
        for queries in a.queries:
            rows = read_query_set(queries)
            configs = [(0, 0)] + [(k, acc) for k in a.top_k for acc in a.accept_inliers]
            for top_k, accept in configs:
                s = Settings(catalog=a.catalog, data=Path(data), model=a.model,
                             threads=a.threads, rerank=top_k > 0, rerank_top_k=max(top_k, 2),
                             rerank_accept_inliers=accept)
                r = run(s, rows)

                def cell(stage: str, r: dict[str, float] = r) -> str:
                    if f"{stage}_p50" not in r:
                        return "-"
                    return f"{r[stage + '_p50']:.1f} / {r[stage + '_p90']:.1f}"

                mode = f"top-{top_k}, accept {accept or '-'}" if top_k else "off"
                line = (f"| {queries.name} (n={len(rows)}) | {mode}"
                        f" | {r['p@1']:.3f} | {r['p@5']:.3f} | {cell('embed')} | "
                        f"{cell('search')} | {cell('verify')} | {cell('total')} |")
                print(line, flush=True)
                lines.append(line)
    lines += ["", "Reproduce: `.venv/bin/python benchmarks/rerank.py --queries "
              + " ".join(str(q) for q in a.queries) + "`"]
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
