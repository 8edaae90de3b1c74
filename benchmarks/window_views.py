"""How the second look's sub-crop windows rank the true album, embedding only, per model.

For each stress crop of a level: the true album's rank by the whole crop, by the best of the
2x2 windows at 85 % (an oracle: which window is best is unknown at query time), and by three
ways to pool the crop and its windows per album (max cosine - what the second look re-scores
with -, mean cosine, reciprocal-rank fusion). Grey crops of an RGB model are ranked against the
covers' grey renditions, as the service does.

    PYTHONPATH=. .venv/bin/python benchmarks/window_views.py \
        --model models/cratewatch-embedder.onnx --level hard
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
from PIL import Image

from service.embedder import Embedder
from service.preprocess import grey_rendition, is_grey
from service.rectify import windows
from training.catalog import load_catalog, open_cover


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", type=Path, required=True)
    p.add_argument("--level", default="hard")
    p.add_argument("--framing", default="tight", help="tight | loose (the query set)")
    p.add_argument("--root", type=Path, default=Path("runs/stress"), help="stress set root")
    a = p.parse_args()
    e = Embedder(a.model, threads=2)

    def embed(images: list[Image.Image]) -> np.ndarray:
        return np.concatenate([e.embed_images(images[i:i + 64])
                               for i in range(0, len(images), 64)])

    covers = load_catalog(a.root / "catalog")
    images = [open_cover(c) for c in covers]
    colour = embed(images)
    grey = embed([grey_rendition(im) for im in images]) if e.info.channels == 3 else colour
    ids = np.array([c.album_id for c in covers])
    q = a.root / "queries" / "report" / a.framing
    with (q / "queries.csv").open(newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["level"] == a.level]
    if not rows:
        raise SystemExit(f"no {a.level} crops in {q / 'queries.csv'}")
    ranks: dict[str, list[int]] = {k: [] for k in ("whole", "best window (oracle)", "max",
                                                  "mean", "rrf")}
    for r in rows:
        with Image.open(q / r["path"]) as im:
            crop = im.convert("RGB")
        cat = grey if e.info.channels == 3 and is_grey(crop) else colour
        s = embed([crop, *windows(crop, 2, 0.85)]) @ cat.T
        truth = ids == r["album_id"]

        def rank(scores: np.ndarray, truth: np.ndarray = truth) -> int:
            return int((scores > scores[truth][0]).sum())

        order = np.argsort(np.argsort(-s, axis=1), axis=1)
        ranks["whole"].append(rank(s[0]))
        ranks["best window (oracle)"].append(min(rank(x) for x in s[1:]))
        ranks["max"].append(rank(s.max(0)))
        ranks["mean"].append(rank(s.mean(0)))
        ranks["rrf"].append(rank((1.0 / (10 + order)).sum(0)))
    print(f"{a.model} ({e.version}), {a.framing} {a.level}, {len(rows)} crops, "
          f"catalog {len(covers)}")
    for name, rs in ranks.items():
        arr = np.array(rs)
        print(f"  {name:22s} top-1 {np.mean(arr < 1):.3f}  top-5 {np.mean(arr < 5):.3f}")


if __name__ == "__main__":
    main()
