"""A query alone in flight lends half of its votes and verifications to the idle core
(PARALLEL_ALONE): same answers as one thread; the descriptor index lets searches run together;
verification skips RANSAC below the fewest inliers any rule reads. Real SIFT, FAISS, RANSAC,
ONNX (tiny model) and the app through its lifespan, on generated covers."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from service.config import Settings
from service.decision import DEFAULT
from service.demo import fake_album, make_cover
from service.features import DIM, Extractor, FeatureConfig, LocalFeatures
from service.retrieve import RetrievalConfig, in_order
from service.rwlock import ReadWriteLock
from service.testing.images import make_catalog, png_bytes
from service.verify import Verifier
from service.vote_index import DescriptorIndex
from tests.conftest import app_client
from tests.test_service_local import _perspective_photo
from tests.test_service_rectify import _random_corners, loose_crop
from tests.test_service_staged import TARGET, N, _retriever, _run, _vectors


class Counting(ThreadPoolExecutor):
    """A real one-thread executor that counts the work handed to it."""

    def __init__(self) -> None:
        super().__init__(1)
        self.submitted = 0

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        self.submitted += 1
        return super().submit(fn, *args, **kwargs)


def test_in_order_with_a_helper_is_the_plain_loop() -> None:
    items = list(range(9))
    with Counting() as helper:
        for stop_at in (0, 3, 4, 8, 99):
            def stop(x: int, at: int = stop_at) -> bool:
                return x == at
            plain = in_order(lambda x: x, items, None, stop)
            assert plain == items[: stop_at + 1]
            assert in_order(lambda x: x, items, helper, stop) == plain
        assert in_order(lambda x: x * 2, items, helper) == [x * 2 for x in items]
        assert helper.submitted > 0

        def boom(x: int) -> int:
            if x == 5:
                raise ValueError("verification failed")
            return x
        with pytest.raises(ValueError):
            in_order(boom, items, helper)


@pytest.fixture(scope="module")
def covers() -> list[Image.Image]:
    rng = np.random.default_rng(21)
    return [make_cover(rng, *fake_album(rng), size=320) for _ in range(N)]


@pytest.mark.parametrize("config, sign", [
    (RetrievalConfig(first_k=3, stop_inliers=12, stop_coverage=0.25), 1),  # first look only
    (RetrievalConfig(embed_top_k=5, first_k=3, stop_inliers=12), -1),  # votes + the union
    (RetrievalConfig(embed_top_k=5, vote_top_k=5, first_k=0, stop_inliers=0), 1),  # no stop
])
def test_retrieval_with_a_helper_matches_one_thread(covers: list[Image.Image],
                                                    config: RetrievalConfig, sign: int) -> None:
    photo = Image.fromarray(_perspective_photo(covers[TARGET], np.random.default_rng(2)))
    r = _retriever(covers, config)
    query = sign * _vectors()[TARGET]
    alone = _run(r, photo, query)
    with Counting() as helper:
        helped = r.run(photo, query[None, :], 5, DEFAULT, {}, helper=helper)
        assert helper.submitted > 0
    assert _evidence(helped.checked) == _evidence(alone.checked)
    assert _evidence(helped.matches) == _evidence(alone.matches)
    assert helped.decision == alone.decision
    assert alone.matches[0].album.album_id == f"a{TARGET}"


def _evidence(matches: list[Any]) -> list[tuple[str, int, float, int]]:
    return [(m.album.album_id, m.evidence.inliers, m.evidence.coverage, m.votes)
            for m in matches]


def test_votes_split_over_two_threads_are_the_same(covers: list[Image.Image]) -> None:
    extractor = Extractor(FeatureConfig())
    index = DescriptorIndex(exact_limit=0, factory="IVF16,SQ8", nprobe=4)
    index.build([(i, extractor.catalog(c)) for i, c in enumerate(covers)])
    photo = _perspective_photo(covers[TARGET], np.random.default_rng(4))
    query = extractor.query(photo)
    assert len(query) >= 64  # enough to split
    with Counting() as helper:
        assert index.votes(query, helper) == index.votes(query)
        assert helper.submitted == 1
    votes = index.votes(query)
    assert max(votes, key=lambda k: votes[k]) == TARGET


def test_readers_share_the_lock_and_a_writer_waits_for_them() -> None:
    """No sleeps decide the order: the readers hold the lock until the test lets them go,
    and the writer asks only once both are inside."""
    lock = ReadWriteLock()
    both_in, release = threading.Event(), threading.Event()
    inside = threading.Barrier(2, action=both_in.set, timeout=30)
    order: list[str] = []
    errors: list[BaseException] = []  # a thread's exception is otherwise invisible to pytest

    def collected(body: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                body()
            except BaseException as exc:
                errors.append(exc)
        return run

    def reader() -> None:
        with lock.read():
            inside.wait()  # two readers inside at once, else BrokenBarrierError
            assert release.wait(timeout=30)
            order.append("read")

    def writer() -> None:
        with lock.write():
            order.append("write")

    readers = [threading.Thread(target=collected(reader)) for _ in range(2)]
    for t in readers:
        t.start()
    assert both_in.wait(timeout=30), errors
    write = threading.Thread(target=collected(writer))
    write.start()
    write.join(timeout=0.2)  # however slow the machine, it cannot get in while readers hold it
    assert write.is_alive() and order == []
    release.set()
    for t in (*readers, write):
        t.join(timeout=30)
    assert errors == []
    assert order == ["read", "read", "write"]


def _matched(n_agree: int) -> tuple[LocalFeatures, LocalFeatures]:
    """A cover of 200 random descriptors and a query sharing ``n_agree`` of them, their points
    moved by one homography (the others far from every cover descriptor)."""
    rng = np.random.default_rng(n_agree)
    cover_desc = rng.integers(0, 60, (200, DIM)).astype(np.uint8)
    cover_pts = rng.uniform(10, 310, (200, 2)).astype(np.float32)
    query_desc = np.full((60, DIM), 255, np.uint8)
    query_desc[:n_agree] = cover_desc[:n_agree]
    query_pts = rng.uniform(10, 150, (60, 2)).astype(np.float32)
    query_pts[:n_agree] = cover_pts[:n_agree] * 0.5 + 3.0  # a scale + shift: a homography
    return LocalFeatures(query_pts, query_desc), LocalFeatures(cover_pts, cover_desc)


def test_fewer_matches_than_any_rule_reads_skip_ransac() -> None:
    q5, c5 = _matched(5)
    assert Verifier(min_matches=4).match(q5, c5).inliers == 5
    assert Verifier(min_matches=6).match(q5, c5).inliers == 0  # not verified: 0
    q6, c6 = _matched(6)
    assert Verifier(min_matches=6).match(q6, c6).inliers == 6


@pytest.fixture(scope="module")
def catalog320(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("catalog320p")
    make_catalog(directory, n=30, size=320)
    return directory


def test_engine_answers_the_same_with_and_without_the_idle_core(
        make_settings: Callable[..., Settings], catalog320: Path, tmp_path: Path) -> None:
    """Loose crops (votes, the union, the second look) through the real app, both ways."""
    rng = np.random.default_rng(7)
    crops = [png_bytes(loose_crop(Image.open(catalog320 / "images" / f"alb-{i:03d}.png"),
                                  _random_corners(rng), rng, out=130)[0]) for i in range(0, 30, 3)]
    answers = []
    for parallel in (True, False):
        settings = make_settings(catalog=catalog320, data=tmp_path / str(parallel),
                                 parallel_alone=parallel, gate_score=2.0, threads=2)
        with app_client(settings) as c:
            bodies = [c.post("/identify?k=5", content=d,
                             headers={"content-type": "image/png"}).json() for d in crops]
        answers.append([{k: v for k, v in b.items() if k != "timings_ms"} for b in bodies])
        stages = set().union(*(b["timings_ms"] for b in bodies))
        assert {"votes", "second"} <= stages
    assert answers[0] == answers[1]
    assert Settings().parallel_alone is True
