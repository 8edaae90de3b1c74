"""`cratewatch-train ood` / `ood-distractors`: write OOD query sets and distractor catalogs.

Query sets use the format of ``training.evaluate.read_query_set``: ``queries.csv`` (path,
album_id, level, framing, ... ) + ``images/``, plus ``manifest.json`` (generator settings,
the hand photos used) and ``split.json`` (the album split the covers came from).
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np
from PIL import Image

from training.catalog import (
    DEFAULT_SPLIT,
    Cover,
    load_catalog,
    load_split,
    open_cover,
    save_split,
    split_albums,
)
from training.ood.distractors import make_distractors, write_distractors
from training.ood.generator import FRAMINGS, LEVELS, make_set
from training.ood.hands import EvalHand, load_eval_hands
from training.paths import shared_data_dir

# Pinned: OOD-validation picks checkpoints on ood_val covers, OOD-test reports on test covers.
PRESETS: dict[str, tuple[str, int]] = {"ood-val": ("ood_val", 9101), "ood-test": ("test", 9202)}
COLUMNS = ["path", "album_id", "level", "framing", "mode", "sleeve_area", "occluded_fraction",
           "occluders", "yaw", "pitch", "roll", "background", "width", "height", "seed"]


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ood", help="write an evaluation-only OOD query set (training/ood)")
    p.add_argument("--catalog", type=Path, required=True, help="covers (albums.csv + images)")
    p.add_argument("--out", type=Path, required=True, help="query set directory to write")
    p.add_argument("--preset", choices=sorted(PRESETS), default=None,
                   help="pinned subset and seed: ood-val (ood_val covers) or ood-test (test)")
    p.add_argument("--split", type=Path, default=None,
                   help="split.json; default: the shipped run's split + 50 ood_val albums")
    p.add_argument("--subset", default=None, help="test | ood_val | val | train | all")
    p.add_argument("--levels", default="easy,medium,hard",
                   help="comma list of levels (default: %(default)s)")
    p.add_argument("--framing", default="tight", choices=FRAMINGS,
                   help="tight: detector-like crop; loose: sleeve is 40-70%% of the crop")
    p.add_argument("--n", type=int, default=None, help="default: 2 per cover and level")
    p.add_argument("--seed", type=int, default=None, help="default: the preset's, else 0")
    p.add_argument("--hands", type=Path, default=None, help="default: <shared>/hands")
    p = sub.add_parser("ood-distractors", help="write generated distractor covers (a catalog)")
    p.add_argument("--catalog", type=Path, required=True, help="covers; only train ones used")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--split", type=Path, default=None, help="default as for `ood`")
    p.add_argument("--n", type=int, default=1000, help="distractors (default: %(default)s)")
    p.add_argument("--seed", type=int, default=7, help="distractor i uses RNG stream (seed, i)")


def resolve_split(catalog: list[Cover], split: Path | None) -> dict[str, list[str]]:
    if split is not None:
        return load_split(split)
    d = DEFAULT_SPLIT
    return split_albums([c.album_id for c in catalog], d["n_test"], d["n_val"], d["seed"],
                        d["n_ood_val"])


def _hands(hands_dir: Path | None) -> list[EvalHand]:
    if hands_dir is None:
        root = shared_data_dir()
        hands_dir = root / "hands" if root and (root / "hands").is_dir() else None
    return load_eval_hands(hands_dir) if hands_dir else []


def write_ood_set(covers: list[Cover], out: Path, n: int, levels: list[str], framing: str,
                  seed: int, hands: list[EvalHand]) -> Path:
    """The queries of ``make_set`` as PNGs + ``queries.csv`` (one row per query)."""
    (out / "images").mkdir(parents=True, exist_ok=True)
    arrays = [np.asarray(open_cover(c)) for c in covers]
    with (out / "queries.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=COLUMNS)
        w.writeheader()
        for i, (ci, q) in enumerate(make_set(arrays, n, levels, framing, seed, hands)):
            rel = f"images/q{i:06d}.png"  # PNG: keep the generated codec artefacts as they are
            q.image.save(out / rel)
            w.writerow({**{k: q.meta.get(k) for k in COLUMNS}, "path": rel,
                        "album_id": covers[ci].album_id, "seed": f"{seed}:{i}"})
    return out / "queries.csv"


def run_ood(a: argparse.Namespace) -> None:
    preset_subset, preset_seed = PRESETS.get(a.preset or "", ("all", 0))
    subset = a.subset or preset_subset
    seed = a.seed if a.seed is not None else preset_seed
    levels = [lv.strip() for lv in a.levels.split(",") if lv.strip()]
    if bad := [lv for lv in levels if lv not in LEVELS]:
        raise SystemExit(f"unknown level(s) {bad}; choose from {sorted(LEVELS)}")
    catalog = load_catalog(a.catalog)
    split = resolve_split(catalog, a.split) if subset != "all" else {}
    keep = set(split[subset]) if subset != "all" else {c.album_id for c in catalog}
    covers = [c for c in catalog if c.album_id in keep]
    if not covers:
        raise SystemExit(f"no covers of subset {subset!r} in {a.catalog}")
    hands = _hands(a.hands)
    n = a.n if a.n is not None else 2 * len(covers) * len(levels)
    path = write_ood_set(covers, a.out, n, levels, a.framing, seed, hands)
    if split:
        save_split(split, a.out / "split.json")
    manifest = {"generator": "training.ood", "preset": a.preset, "subset": subset,
                "seed": seed, "levels": levels, "framing": a.framing, "n": n,
                "covers": len(covers), "hands": sorted({h.source for h in hands})}
    (a.out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    contact_sheet(a.out, min(n, 32))
    print(f"wrote {n} OOD queries of {len(covers)} covers ({subset}, {a.framing}, seed {seed}, "
          f"{len(hands)} evaluation hands) to {path}")


def contact_sheet(out: Path, n: int, cell: int = 96) -> None:
    sheet = Image.new("RGB", (8 * cell, max(1, (n + 7) // 8) * cell))
    for i in range(n):
        with Image.open(out / "images" / f"q{i:06d}.png") as im:
            sheet.paste(im.convert("RGB").resize((cell, cell)), ((i % 8) * cell, (i // 8) * cell))
    sheet.save(out / "contact_sheet.png")


def run_distractors(a: argparse.Namespace) -> None:
    catalog = load_catalog(a.catalog)
    train = set(resolve_split(catalog, a.split)["train"])
    sources = [open_cover(c).resize((320, 320)) for c in catalog if c.album_id in train]
    path = write_distractors(make_distractors(sources, a.n, a.seed), a.out)
    print(f"wrote {a.n} distractor covers to {path}")
