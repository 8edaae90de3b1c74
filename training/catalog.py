"""Cover catalogs on disk (albums.csv + images, or a plain folder) and the album-level split."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from service.catalog import load_catalog as read_service_catalog

_IMAGE_EXT = {".jpg", ".jpeg", ".png", ".webp"}


@dataclass(frozen=True)
class Cover:
    album_id: str
    path: Path


def load_catalog(catalog_dir: Path) -> list[Cover]:
    """Covers from ``albums.csv`` (album_id, image) if present, else every image (id = stem)."""
    if (catalog_dir / "albums.csv").exists():
        # The service's own parser and row checks: offline evaluation ranks the same albums
        # the live service would load from this catalog.
        return [Cover(a.album_id, a.image_path) for a in read_service_catalog(catalog_dir).albums]
    # A mistyped path must not evaluate to "P@1 0.000" against an empty catalog.
    if not catalog_dir.is_dir():
        raise FileNotFoundError(f"catalog directory {catalog_dir} does not exist")
    files = sorted(p for p in catalog_dir.rglob("*") if p.suffix.lower() in _IMAGE_EXT)
    if not files:
        raise ValueError(f"{catalog_dir} has no albums.csv and no cover images")
    return [Cover(p.stem, p) for p in files]


def open_cover(cover: Cover) -> Image.Image:
    with Image.open(cover.path) as im:
        return im.convert("RGB")


def split_albums(ids: list[str], n_test: int, n_val: int, seed: int,
                 n_ood_val: int = 0) -> dict[str, list[str]]:
    """Album-level split: test, val and ood_val albums never appear in training, in any form.

    ``ood_val`` (the covers of the OOD-validation set) is carved after test and val from the
    same permutation, so adding it leaves test and val exactly as before (the bundled model's
    test covers stay the test covers); it comes out of what used to be training albums.
    """
    if n_test + n_val + n_ood_val >= len(ids):
        raise ValueError("split leaves no training albums")
    order = [ids[i] for i in np.random.default_rng(seed).permutation(len(ids))]
    cut = n_test + n_val
    return {
        "test": sorted(order[:n_test]),
        "val": sorted(order[n_test:cut]),
        "ood_val": sorted(order[cut : cut + n_ood_val]),
        "train": sorted(order[cut + n_ood_val :]),
    }


# The split of the shipped model's run (seed 0, 170 test, 50 val) plus 50 OOD-validation
# albums: what `cratewatch-train ood` uses when no --split is given.
DEFAULT_SPLIT = {"n_test": 170, "n_val": 50, "n_ood_val": 50, "seed": 0}


def save_split(split: dict[str, list[str]], path: Path) -> None:
    path.write_text(json.dumps(split, indent=1) + "\n")


def load_split(path: Path) -> dict[str, list[str]]:
    data: dict[str, list[str]] = json.loads(path.read_text())
    return data
