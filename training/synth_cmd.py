"""`cratewatch-train synth`: a query set on disk (images + queries.csv + contact sheet)."""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from training.catalog import Cover, load_catalog, load_split, open_cover
from training.paths import shared_data_dir
from training.synth.hands import load_hands
from training.synth.pipeline import QuerySynth, cover_array

LEVEL_NAMES = ("easy", "medium", "hard")


def _covers(catalog: Path, split: Path | None, subset: str) -> list[Cover]:
    covers = load_catalog(catalog)
    if split is not None:
        keep = set(load_split(split)[subset])
        covers = [c for c in covers if c.album_id in keep]
    if not covers:
        raise SystemExit(f"no covers found in {catalog}")
    return covers


def contact_sheet(pairs: list[tuple[Image.Image, Image.Image]], path: Path, cell: int = 96) -> None:
    """Clean cover beside its query, several pairs per row."""
    cols = 4
    rows = (len(pairs) + cols - 1) // cols
    sheet = Image.new("L", (cols * 2 * cell, max(1, rows) * cell), 255)
    for i, (clean, query) in enumerate(pairs):
        x, y = (i % cols) * 2 * cell, (i // cols) * cell
        sheet.paste(clean.convert("L").resize((cell, cell)), (x, y))
        sheet.paste(query.convert("L").resize((cell, cell)), (x + cell, y))
    sheet.save(path)


def write_queries(
    covers: list[Cover], out: Path, n: int, levels: list[str], seed: int,
    synths: dict[str, QuerySynth],
) -> Path:
    """Query ``i`` shows cover ``i % len(covers)`` at level ``levels[i % len(levels)]``,
    made with RNG stream ``(seed, i)``: any single query can be regenerated alone."""
    (out / "images").mkdir(parents=True, exist_ok=True)
    cache: dict[int, np.ndarray] = {}
    pairs: list[tuple[Image.Image, Image.Image]] = []
    csv_path = out / "queries.csv"
    with csv_path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "album_id", "level", "occluded_fraction", "occluders",
                         "width", "height", "seed"])
        for i in tqdm(range(n), desc="synth", mininterval=5, ascii=True):
            ci = i % len(covers)
            if ci not in cache:
                cache[ci] = cover_array(open_cover(covers[ci]))
            level = levels[i % len(levels)]
            q = synths[level](cache[ci], np.random.default_rng([seed, i]))
            rel = f"images/q{i:06d}.png"  # PNG: keep the synthetic JPEG artefacts as they are
            q.image.save(out / rel)
            m = q.meta()
            writer.writerow([rel, covers[ci].album_id, level, m["occluded_fraction"],
                             m["occluders"], m["width"], m["height"], f"{seed}:{i}"])
            if len(pairs) < 32:
                pairs.append((Image.fromarray(cache[ci]), q.image))
    contact_sheet(pairs, out / "contact_sheet.png")
    return csv_path


def run_synth(a: argparse.Namespace) -> None:
    covers = _covers(a.catalog, a.split, a.subset)
    levels = list(LEVEL_NAMES) if a.level == "all" else [a.level]
    hands_dir = a.hands
    if hands_dir is None:
        root = shared_data_dir()
        hands_dir = root / "hands" if root and (root / "hands").is_dir() else None
    hands = load_hands(hands_dir) if hands_dir else []
    first = QuerySynth(levels[0], hands=hands, occluder=a.occluder, gligen_model=a.gligen_model,
                       gligen_device=a.gligen_device, gligen_steps=a.gligen_steps)
    # one GLIGEN pipeline for all levels: loading it is the slow part
    synths = {lv: QuerySynth(lv, hands=hands, occluder=a.occluder, gligen=first.gligen,
                             gligen_model=a.gligen_model) for lv in levels}
    path = write_queries(covers, a.out, a.n, levels, a.seed, synths)
    print(f"wrote {a.n} queries of {len(covers)} covers to {path}")
