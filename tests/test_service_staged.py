"""Adaptive local work: the embedding's first candidates are verified before any votes, the
votes run only when none of them is strong, and query features start alongside the embedding
only on an idle engine. Real SIFT, FAISS and RANSAC on generated covers; the embedding vectors
are set by hand so that the embedding's ranking is known."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from service.album_index import AlbumIndex, IndexConfig
from service.alongside import Alongside
from service.catalog import Album
from service.config import Settings
from service.decision import DEFAULT
from service.demo import fake_album, make_cover
from service.embedder import Embedder
from service.engine import Engine
from service.features import Extractor, FeatureConfig
from service.retrieve import Result, RetrievalConfig, Retriever
from service.testing.images import png_bytes
from service.verify import Verifier
from tests.conftest import app_client
from tests.test_service_local import _perspective_photo

N, DIM, TARGET = 24, 16, 5


@pytest.fixture(scope="module")
def covers() -> list[Image.Image]:
    rng = np.random.default_rng(21)
    return [make_cover(rng, *fake_album(rng), size=320) for _ in range(N)]


@pytest.fixture(scope="module")
def photo(covers: list[Image.Image]) -> Image.Image:
    return Image.fromarray(_perspective_photo(covers[TARGET], np.random.default_rng(2)))


def _vectors() -> np.ndarray:
    v = np.random.default_rng(0).normal(size=(N, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _retriever(covers: list[Image.Image], config: RetrievalConfig) -> Retriever:
    index = AlbumIndex(DIM, IndexConfig(local_exact_limit=10**7), local=True)
    iids = [index.register(Album(f"a{i}", "x", "y", Path(f"a{i}.png"), sha256=str(i)))
            for i in range(N)]
    extractor = Extractor(FeatureConfig())
    index.build(iids, _vectors(), [extractor.catalog(c) for c in covers])
    return Retriever(index, extractor, Verifier(320), config)


def _run(r: Retriever, photo: Image.Image, query: np.ndarray) -> Result:
    return r.run(photo, query[None, :], 5, DEFAULT, {})  # DEFAULT: the gate is closed


def test_strong_first_candidate_skips_the_votes(covers: list[Image.Image],
                                                photo: Image.Image) -> None:
    r = _retriever(covers, RetrievalConfig(first_k=3, stop_inliers=12, stop_coverage=0.25))
    res = _run(r, photo, _vectors()[TARGET])  # the embedding ranks the target first
    assert "votes" not in res.timings_ms and {"features", "verify"} <= set(res.timings_ms)
    # All three first candidates are verified (a strong wrong one must not hide the right one).
    assert [m.album.album_id for m in res.checked] == [
        m.album.album_id for m in r.embedding_matches(_vectors()[TARGET][None], 3)]
    assert res.checked[0].evidence.inliers >= 12
    assert all(m.evidence.inliers < 12 for m in res.checked[1:])
    assert res.matches[0].album.album_id == f"a{TARGET}"
    assert res.decision.identified == f"a{TARGET}"


def test_votes_find_what_the_embedding_missed(covers: list[Image.Image],
                                              photo: Image.Image) -> None:
    r = _retriever(covers, RetrievalConfig(embed_top_k=5, first_k=3, stop_inliers=12))
    query = -_vectors()[TARGET]  # the target is the embedding's very last album
    assert f"a{TARGET}" not in [m.album.album_id for m in r.embedding_matches(query[None], 6)]
    res = _run(r, photo, query)
    assert "votes" in res.timings_ms
    assert res.matches[0].album.album_id == f"a{TARGET}"
    assert res.decision.identified == f"a{TARGET}"


def test_first_k_zero_always_votes_and_no_stop_verifies_the_union(
        covers: list[Image.Image], photo: Image.Image) -> None:
    r = _retriever(covers, RetrievalConfig(embed_top_k=5, vote_top_k=5, first_k=0,
                                           stop_inliers=0))
    res = _run(r, photo, _vectors()[TARGET])
    assert "votes" in res.timings_ms
    union = {m.album.album_id for m in r.embedding_matches(_vectors()[TARGET][None], 5)}
    verified = {m.album.album_id for m in res.checked}
    assert union <= verified and len(verified) <= 10  # every candidate, none twice
    assert len(verified) == len(res.checked)
    assert res.matches[0].album.album_id == f"a{TARGET}"


def test_query_side_scales_queries_only() -> None:
    cover = make_cover(np.random.default_rng(1), *fake_album(np.random.default_rng(1)),
                       size=400)
    ex = Extractor(FeatureConfig(side=320, query_side=160))
    assert ex.config.key == Extractor(FeatureConfig(side=320)).config.key
    c = ex.catalog(cover.resize((100, 100)))  # covers: always at ``side``
    assert len(c) and 240 < c.points.max() <= 320
    # Queries: small crops up to query_side, large ones down to side, others as they are.
    for size, working in ((100, 160), (200, 200), (400, 320)):
        assert ex.config.query_working_side((size, size // 2)) == working
        q = ex.query(cover.resize((size, size)))
        assert len(q) and 0.75 * working < q.points.max() <= working, (size, q.points.max())


def test_alongside_only_while_alone() -> None:
    a = Alongside()
    with a.query() as first:
        assert first
        with a.query() as second:
            assert not second
    with a.query() as again:
        assert again
    with Alongside(enabled=False).query() as off:
        assert not off
    assert a.start(len, "abc").result() == 3
    a.close()


def test_engine_starts_query_features_alongside(make_settings: Callable[..., Settings],
                                                covers: list[Image.Image],
                                                photo: Image.Image) -> None:
    data = png_bytes(photo)
    closed = make_settings(gate_score=2.0, gate_margin=2.0)
    with app_client(closed) as c:
        engine: Engine = c.app.state.engine  # type: ignore[attr-defined]
        body = c.post("/identify", files={"image": ("p.png", data)}).json()
        assert engine.alongside.started == 1 and body["decided_by"] == "verified"
        assert "features" in body["timings_ms"]
    opened = make_settings(gate_score=-1.0, gate_margin=-1.0)  # the gate answers everything
    with app_client(opened) as c:
        body = c.post("/identify", files={"image": ("p.png", data)}).json()
        assert body["decided_by"] == "embedding" and "features" not in body["timings_ms"]
    with app_client(make_settings(speculative_features=False, gate_score=2.0)) as c:
        engine = c.app.state.engine  # type: ignore[attr-defined]
        body = c.post("/identify", files={"image": ("p.png", data)}).json()
        assert engine.alongside.started == 0 and "features" in body["timings_ms"]


def test_ort_spinning_off_embeds_the_same(tiny_model: Path) -> None:
    images = [make_cover(np.random.default_rng(i), *fake_album(np.random.default_rng(i)), 96)
              for i in range(3)]
    quiet = Embedder(tiny_model, threads=2, spinning=False)
    opts = quiet._session.get_session_options()
    assert opts.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    np.testing.assert_allclose(quiet.embed_images(images),
                               Embedder(tiny_model, threads=2).embed_images(images), atol=1e-6)
    assert Settings().ort_spinning is False
