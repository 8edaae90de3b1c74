"""`cratewatch-train eval`: top-1/top-5 accuracy (P@1/P@5) per level vs the whole catalog.

Queries are embedded with ``service.embedder.Embedder`` (the service's preprocessing and ONNX
Runtime) and ranked with ``service.index.VectorIndex`` (the service's FAISS index). With grey
views (RGB models, on by default, as in the service) a query the service's
``service.preprocess.is_grey`` calls grey is ranked against the covers' grey renditions
(``Embedder.embed_views``), every other one against the covers as they are.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from service.embedder import GREY_VIEW, Embedder
from service.index import VectorIndex
from service.preprocess import is_grey
from training.catalog import Cover, load_catalog, open_cover
from training.metrics import top_k_accuracy, top_k_of
from training.multicrop import multicrop_scores

LEVEL_ORDER = {"easy": 0, "medium": 1, "hard": 2}


@dataclass(frozen=True)
class QueryRow:
    path: Path
    album_id: str
    level: str


def read_query_set(queries_dir: Path) -> list[QueryRow]:
    """Rows of ``queries.csv`` written by ``cratewatch-train synth`` (path, album_id, level)."""
    with (queries_dir / "queries.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    if rows and not {"path", "album_id"} <= rows[0].keys():
        raise ValueError(f"{queries_dir / 'queries.csv'}: needs path and album_id columns")
    return [QueryRow(queries_dir / r["path"], r["album_id"], r.get("level") or "all")
            for r in rows]


def embed_covers(embedder: Embedder, covers: list[Cover], batch: int = 64,
                 views: tuple[str, ...] = ("",)) -> np.ndarray:
    """``(len(views), covers, dim)``: each cover in each view (as is, grey rendition)."""
    out = [embedder.embed_views([open_cover(c) for c in covers[i : i + batch]], views)
           for i in range(0, len(covers), batch)]
    return (np.concatenate(out, axis=1) if out
            else np.zeros((len(views), 0, embedder.dim), np.float32))


def load_queries(rows: list[QueryRow]) -> list[Image.Image]:
    images = []
    for r in rows:
        with Image.open(r.path) as im:
            images.append(im.copy())
    return images


def embed_queries(embedder: Embedder, images: list[Image.Image], batch: int = 64) -> np.ndarray:
    out = [embedder.embed_images(images[i : i + batch]) for i in range(0, len(images), batch)]
    return np.concatenate(out)


def scores_per_level(ranked: Sequence[Sequence[str]],
                     rows: Sequence[QueryRow]) -> dict[str, dict[str, float]]:
    """Top-1 and top-5 accuracy (keys ``p@1``, ``p@5``) and n per level present, + ``all``."""
    levels = sorted({r.level for r in rows}, key=lambda lv: (LEVEL_ORDER.get(lv, 3), lv))
    out: dict[str, dict[str, float]] = {}
    for level in [*levels, "all"]:
        idx = [i for i, r in enumerate(rows) if level in ("all", r.level)]
        ranks, truth = [ranked[i] for i in idx], [rows[i].album_id for i in idx]
        out[level] = {"p@1": top_k_accuracy(ranks, truth, 1),
                      "p@5": top_k_accuracy(ranks, truth, 5), "n": len(idx)}
    return out


@dataclass
class EvalResult:
    scores: dict[str, dict[str, float]]
    ranked: list[list[str]]
    rows: list[QueryRow]
    n_catalog: int
    covers: list[Cover]  # what was ranked: catalog covers, then any distractors
    grey: list[bool] | None = None  # per query: ranked against the grey views (None: off)


def evaluate(model: Path, catalog_dir: Path, queries_dir: Path, threads: int = 2,
             distractors: Path | None = None, multi_crop: str = "none",
             grey_views: bool = True) -> EvalResult:
    """Embed the whole catalog (+ distractor covers) and every query; rank with the service's
    FAISS index (or, with ``multi_crop``, by the best sub-crop: ``training.multicrop``).
    ``grey_views``: as the service's GREY_VIEWS (acts only for an RGB model)."""
    embedder = Embedder(model, threads=threads)
    covers = load_catalog(catalog_dir) + (load_catalog(distractors) if distractors else [])
    if len({c.album_id for c in covers}) != len(covers):
        raise ValueError("catalog and distractors share album ids")
    views = embedder.catalog_views(grey_views)
    vectors = embed_covers(embedder, covers, views=views)
    rows = read_query_set(queries_dir)
    images = load_queries(rows)
    grey = np.array([GREY_VIEW in views and is_grey(im) for im in images], dtype=bool)
    ids = np.full((len(rows), 5), -1, np.int64)
    for view, picked in ((0, ~grey), (len(views) - 1, grey)):
        sel = np.flatnonzero(picked)
        if not len(sel):
            continue
        part = [images[i] for i in sel]
        if multi_crop != "none":
            ids[sel] = top_k_of(multicrop_scores(embedder, part, vectors[view], multi_crop), 5)
        else:
            index = VectorIndex.build(np.arange(len(covers), dtype=np.int64), vectors[view],
                                      exact_limit=10**6)
            ids[sel] = index.search(embed_queries(embedder, part), 5)[1]
    ranked = [[covers[int(j)].album_id for j in row if j >= 0] for row in ids]
    return EvalResult(scores_per_level(ranked, rows), ranked, rows, len(covers), covers,
                      grey.tolist() if GREY_VIEW in views else None)


def failure_sheet(res: EvalResult, path: Path, limit: int = 24) -> int:
    """Rows of (query | wrong top-1 | true cover) for the first ``limit`` failures."""
    by_id = {c.album_id: c for c in res.covers}
    fails = [i for i, r in enumerate(res.rows) if res.ranked[i][:1] != [r.album_id]][:limit]
    cell = 96
    sheet = Image.new("L", (3 * cell * 2, max(1, (len(fails) + 1) // 2) * cell), 255)
    for n, i in enumerate(fails):
        x, y = (n % 2) * 3 * cell, (n // 2) * cell
        with Image.open(res.rows[i].path) as q:
            sheet.paste(q.convert("L").resize((cell, cell)), (x, y))
        if res.ranked[i]:
            sheet.paste(open_cover(by_id[res.ranked[i][0]]).convert("L").resize((cell, cell)),
                        (x + cell, y))
        sheet.paste(open_cover(by_id[res.rows[i].album_id]).convert("L").resize((cell, cell)),
                    (x + 2 * cell, y))
    sheet.save(path)
    return len(fails)


def write_report(res: EvalResult, model: Path, queries_dir: Path, out_dir: Path,
                 catalog_dir: Path) -> Path:
    """``report.md`` + ``scores.json`` + ``failures.png`` in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "scores.json").write_text(json.dumps(res.scores, indent=1) + "\n")
    n_fail = failure_sheet(res, out_dir / "failures.png")
    lines = [f"# Evaluation of `{model}`", "",
             f"Queries: `{queries_dir}`; catalog: {res.n_catalog} covers (`{catalog_dir}`"
             " + distractors, if any).", "",
             "P@k = top-k accuracy (true album among the first k).", "",
             "| level | n | P@1 | P@5 |", "|---|---|---|---|"]
    for level, s in res.scores.items():
        lines.append(f"| {level} | {int(s['n'])} | {s['p@1']:.3f} | {s['p@5']:.3f} |")
    lines += ["", *view_lines(res)]
    lines += ["", f"`failures.png`: first {n_fail} misses (query | predicted top-1 | truth)."]
    path = out_dir / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def view_lines(res: EvalResult) -> list[str]:
    """Which queries were ranked against the grey views, and P@1/P@5 of each kind."""
    if res.grey is None:
        return ["Grey views: off (a grey model, or `--grey-views off`): every query is ranked "
                "against the covers as they are."]
    lines = [f"Grey views: on: {sum(res.grey)} of {len(res.rows)} queries classified grey "
             "(`service.preprocess.is_grey`) were ranked against the covers' grey renditions.",
             "", "| queries | n | P@1 | P@5 |", "|---|---|---|---|"]
    for name, want in (("grey", True), ("colour", False)):
        idx = [i for i, g in enumerate(res.grey) if g == want]
        if idx:
            ranks, truth = [res.ranked[i] for i in idx], [res.rows[i].album_id for i in idx]
            lines.append(f"| {name} | {len(idx)} | {top_k_accuracy(ranks, truth, 1):.3f} | "
                         f"{top_k_accuracy(ranks, truth, 5):.3f} |")
    return lines
