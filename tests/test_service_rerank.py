"""Geometric re-rank: on when asked, reports its timing, and never loses to the embedding alone."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from service.config import Settings
from service.demo import degrade
from tests.conftest import app_client


def _views(catalog_dir: Path, n: int) -> list[tuple[str, bytes]]:
    """CCTV-style views (rotation, low resolution, gray, noise, a 'hand') of the first n covers."""
    out = []
    for i in range(n):
        cover = Image.open(catalog_dir / "images" / f"alb-{i:03d}.png").convert("RGB")
        view = degrade(cover.resize((384, 384)), np.random.default_rng(i))
        buf = io.BytesIO()
        view.save(buf, format="JPEG", quality=80)
        out.append((f"alb-{i:03d}", buf.getvalue()))
    return out


def _hits(settings: Settings, views: list[tuple[str, bytes]]) -> tuple[int, set[str]]:
    hits, stages = 0, set()
    with app_client(settings) as c:
        for album_id, data in views:
            body = c.post("/identify?k=5", files={"image": ("v.jpg", data, "image/jpeg")}).json()
            hits += body["matches"][0]["album_id"] == album_id
            stages |= set(body["timings_ms"])
    return hits, stages


def test_rerank_never_worse_than_embedding(make_settings: Callable[..., Settings],
                                           catalog_dir: Path, tmp_path: Path) -> None:
    views = _views(catalog_dir, 30)
    plain, plain_stages = _hits(make_settings(data=tmp_path / "a", rerank=False), views)
    reranked, stages = _hits(make_settings(data=tmp_path / "b", rerank=True, rerank_top_k=10),
                             views)
    assert {"features", "votes", "verify"} <= stages and "verify" not in plain_stages
    assert reranked >= plain
    assert reranked >= 27, (plain, reranked)
