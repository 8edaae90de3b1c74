"""The bundled model on real covers it never saw in training (needs ../shared/data).

A regression guard for the shipped model: medium CCTV-style queries of held-out covers, ranked
by the service's own engine against all 990 covers, must keep finding their album.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from service.config import Settings
from service.engine import Engine
from service.metrics import Metrics
from training.catalog import load_catalog, open_cover, split_albums
from training.paths import shared_data_dir
from training.synth.hands import load_hands
from training.synth.pipeline import QuerySynth, cover_array

SHARED = shared_data_dir()
MODEL = Path(__file__).resolve().parents[1] / "models" / "cratewatch-embedder.onnx"
pytestmark = [
    pytest.mark.shared,
    pytest.mark.skipif(SHARED is None, reason="../shared/data is absent"),
]
N_QUERIES = 40


def _held_out_queries(covers_dir: Path, hands_dir: Path) -> list[tuple[str, bytes]]:
    covers = load_catalog(covers_dir)
    # The training run's split (seed 0, 170 test / 50 val): these covers were never trained on.
    test_ids = split_albums([c.album_id for c in covers], 170, 50, 0)["test"][:N_QUERIES]
    by_id = {c.album_id: c for c in covers}
    synth = QuerySynth("medium", hands=load_hands(hands_dir))
    out = []
    for i, album_id in enumerate(test_ids):
        query = synth(cover_array(open_cover(by_id[album_id])), np.random.default_rng([7, i]))
        buf = io.BytesIO()
        query.image.save(buf, format="PNG")
        out.append((album_id, buf.getvalue()))
    return out


def test_bundled_model_finds_held_out_covers(tmp_path: Path) -> None:
    assert SHARED is not None
    queries = _held_out_queries(SHARED / "covers", SHARED / "hands")
    engine = Engine(Settings(catalog=SHARED / "covers", data=tmp_path, model=MODEL, threads=2,
                             rerank=False), Metrics())
    engine.load()
    assert engine.ready, engine.error
    assert engine.stats["albums"] == 990
    ranked = [[m["album_id"] for m in engine.identify(data, 5)["matches"]] for _, data in queries]
    engine.close()
    p1 = np.mean([r[:1] == [a] for r, (a, _) in zip(ranked, queries, strict=True)])
    p5 = np.mean([a in r for r, (a, _) in zip(ranked, queries, strict=True)])
    # Model card: medium P@1 0.926 / P@5 0.988 on 340 queries; 40 queries leave room for noise.
    assert p1 >= 0.8 and p5 >= 0.9, (p1, p5)
