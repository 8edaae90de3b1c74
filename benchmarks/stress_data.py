"""The stress set of issue 8, pinned: which covers, distractors, queries and seeds.

- Covers: the 990 shared covers. The 170 *test* albums of the shipped model's split
  (``training.catalog.DEFAULT_SPLIT``, never trained on) are the queried ones: 40 of them
  (seed 8; none with a reissue of the same artwork among the shared covers) are taken OUT of
  the catalog ("unknown": the open-set crops), 130 stay ("known").
- Catalog: every other shared cover (820 trained-on covers are distractors too) + the 130 known
  + 1,000 generated distractors (``training.ood.distractors``, seed 7): 1,950 covers.
- Halves (seed 8): known and unknown albums are each split in two. The *calibration* half picks
  thresholds (``cratewatch calibrate``); every figure in the report comes from the other half.
- Queries: the OOD generator (``training.ood``, evaluation-only, its own hands split, shop
  backgrounds, up to 30 degrees of perspective), 2 crops per cover and level: easy/medium/hard
  tight crops, loose framing (sleeve 40-70 % of the crop, medium), and crops of unknown covers
  (all three levels). Calibration half seed 1101, report half seed 2202.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from training.catalog import Cover, load_catalog, open_cover
from training.ood.cli import _hands, resolve_split, write_ood_set
from training.ood.distractors import make_distractors, write_distractors

UNKNOWN, SPLIT_SEED, N_DISTRACTORS, DISTRACTOR_SEED, PER_COVER = 40, 8, 1000, 7, 2
SEEDS = {"calib": 1101, "report": 2202}
PIN = {"unknown": UNKNOWN, "split_seed": SPLIT_SEED, "distractors": N_DISTRACTORS,
       "distractor_seed": DISTRACTOR_SEED, "per_cover": PER_COVER, "seeds": SEEDS, "version": 2}


@dataclass(frozen=True)
class StressSet:
    root: Path
    catalog: Path  # albums.csv + images/ (known + other shared covers + distractors)

    def queries(self, half: str, name: str) -> Path:
        return self.root / "queries" / half / name


def _link(src: Path, dst: Path) -> None:
    """Hard link (the service refuses image paths outside the catalog dir), else copy."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def reissues(shared: Path) -> set[str]:
    """Albums whose artist + title another shared cover shares (77 of 990: reissues and
    pressings, mostly with the same artwork). Identifying one as the other is not an open-set
    error, so none of them is taken out of the catalog as an 'unknown' cover."""
    with (shared / "covers" / "albums.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    key = [(r["artist"].strip().lower(), r["title"].strip().lower()) for r in rows]
    counts = Counter(key)
    return {r["album_id"] for r, k in zip(rows, key, strict=True) if counts[k] > 1}


def albums_split(shared: Path) -> dict[str, list[str]]:
    covers = load_catalog(shared / "covers")
    test = sorted(resolve_split(covers, None)["test"])
    order = [test[i] for i in np.random.default_rng(SPLIT_SEED).permutation(len(test))]
    twins = reissues(shared)
    unknown = [a for a in order if a not in twins][:UNKNOWN]
    known = [a for a in order if a not in unknown]
    return {"known_calib": known[: len(known) // 2], "known_report": known[len(known) // 2 :],
            "unknown_calib": unknown[: len(unknown) // 2],
            "unknown_report": unknown[len(unknown) // 2 :]}


def build(shared: Path, root: Path, log: bool = True) -> StressSet:
    """Write (once) the catalog and the query sets under ``root``; reused when pinned alike."""
    out = StressSet(root, root / "catalog")
    manifest = root / "manifest.json"
    if manifest.exists() and json.loads(manifest.read_text()).get("pin") == PIN:
        return out
    if root.exists():
        shutil.rmtree(root)
    parts = albums_split(shared)
    covers = load_catalog(shared / "covers")
    by_id = {c.album_id: c for c in covers}
    unknown = set(parts["unknown_calib"] + parts["unknown_report"])
    _write_catalog(shared, out.catalog, [c for c in covers if c.album_id not in unknown], root)
    hands = _hands(shared / "hands")
    for half in ("calib", "report"):
        seed = SEEDS[half]
        known = [by_id[a] for a in parts[f"known_{half}"]]
        strangers = [by_id[a] for a in parts[f"unknown_{half}"]]
        per = PER_COVER
        levels = ["easy", "medium", "hard"]
        write_ood_set(known, out.queries(half, "tight"), per * 3 * len(known), levels,
                      "tight", seed, hands)
        write_ood_set(known, out.queries(half, "loose"), per * len(known), ["medium"],
                      "loose", seed + 1, hands)
        write_ood_set(strangers, out.queries(half, "unknown"), per * 3 * len(strangers),
                      levels, "tight", seed + 2, hands)
    manifest.write_text(json.dumps({"pin": PIN, "parts": parts,
                                    "hands": sorted({h.source for h in hands})}, indent=1))
    if log:
        print(f"stress set written to {root}")
    return out


def _write_catalog(shared: Path, catalog: Path, covers: list[Cover], root: Path) -> None:
    images = catalog / "images"
    images.mkdir(parents=True, exist_ok=True)
    rows = []
    for c in covers:
        dst = images / c.path.name
        _link(c.path, dst)
        rows.append([c.album_id, "shared", c.album_id, f"images/{dst.name}"])
    split = resolve_split(load_catalog(shared / "covers"), None)
    train = set(split["train"])
    sources = [open_cover(c).resize((320, 320)) for c in load_catalog(shared / "covers")
               if c.album_id in train]
    gen = root / "distractors"
    write_distractors(make_distractors(sources, N_DISTRACTORS, DISTRACTOR_SEED), gen)
    with (gen / "albums.csv").open(newline="") as fh:
        for r in csv.DictReader(fh):
            src = gen / r["image"]
            _link(src, images / src.name)
            rows.append([r["album_id"], r["artist"], r["title"], f"images/{src.name}"])
    with (catalog / "albums.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["album_id", "artist", "title", "image"])
        w.writerows(rows)


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--shared", type=Path, default=Path("../shared/data"))
    ap.add_argument("--root", type=Path, default=Path("runs/stress"))
    args = ap.parse_args()
    build(args.shared.resolve(), args.root)
