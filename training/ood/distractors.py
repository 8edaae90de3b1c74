"""Generated distractor covers: catalog entries that no query shows, to make ranking harder.

Half are procedural designs (``service.demo.make_cover``: gradient, shapes, artist/title
text); half are collages of two *training* covers split at a random line with a new title
over them, which look like real sleeves. Test and OOD-validation covers are never used, so
no distractor contains a piece of a cover that a query shows.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from service.demo import fake_album, make_cover
from training.ood.assets import font

SIZE = 320


def _collage(a: Image.Image, b: Image.Image, rng: np.random.Generator) -> Image.Image:
    a, b = a.resize((SIZE, SIZE)), b.resize((SIZE, SIZE))
    mask = Image.new("L", (SIZE, SIZE), 0)
    y0, y1 = (int(v) for v in rng.uniform(0.2, 0.8, size=2) * SIZE)
    ImageDraw.Draw(mask).polygon([(0, 0), (SIZE, 0), (SIZE, y1), (0, y0)], fill=255)
    out = Image.composite(a, b, mask)
    _, title = fake_album(rng)
    ImageDraw.Draw(out).text((12, int(rng.uniform(0.05, 0.8) * SIZE)), title.upper(),
                             fill=tuple(int(v) for v in rng.integers(0, 256, size=3)),
                             font=font(int(rng.integers(4)), int(rng.integers(18, 40))))
    return out


def make_distractors(sources: list[Image.Image], n: int, seed: int) -> list[Image.Image]:
    """``n`` distractor covers; distractor ``i`` uses RNG stream ``(seed, i)``."""
    out = []
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        if i % 2 == 0 or len(sources) < 2:
            out.append(make_cover(rng, *fake_album(rng), SIZE))
        else:
            j, k = rng.choice(len(sources), size=2, replace=False)
            out.append(_collage(sources[int(j)], sources[int(k)], rng))
    return out


def write_distractors(images: list[Image.Image], out: Path) -> Path:
    """A catalog directory (``albums.csv`` + ``images/``), ids ``distractor-00000``..."""
    (out / "images").mkdir(parents=True, exist_ok=True)
    with (out / "albums.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["album_id", "artist", "title", "image"])
        for i, img in enumerate(images):
            rel = f"images/distractor-{i:05d}.jpg"
            img.convert("RGB").save(out / rel, quality=90)
            w.writerow([f"distractor-{i:05d}", "distractor", f"generated {i}", rel])
    return out / "albums.csv"
