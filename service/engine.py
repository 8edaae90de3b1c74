"""The identification engine: catalog + store + cache + embedder + index, and the four operations.

Every method here blocks (decode, ONNX, FAISS, fsync): the API calls them in worker threads.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from service.cache import EmbeddingCache, SameImages, embed_with_cache, sha256_bytes
from service.catalog import Album, load_catalog
from service.config import Settings
from service.decision import DEFAULT, Calibration, Evidence, decide, with_overrides
from service.embedder import Embedder
from service.enrol import Step, run_all_or_nothing, storage_errors
from service.imaging import decode_image
from service.index import VectorIndex, recall_at_k
from service.metrics import Metrics
from service.rerank import Reranker, Verified
from service.store import AlbumExists, AlbumStore

log = logging.getLogger(__name__)


class AlbumNotFound(KeyError):
    """No searchable album has this id."""


class DuplicateImage(Exception):
    """The image is already enrolled under another id (``reject_duplicate_images``)."""

    def __init__(self, album_id: str, duplicate_of: str) -> None:
        super().__init__(album_id, duplicate_of)
        self.album_id, self.duplicate_of = album_id, duplicate_of


class Engine:
    """State machine: ``loading`` -> ``ready`` (or ``failed``); writes are serialised."""

    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.state = "loading"
        self.error: str | None = None
        self.load_gate = threading.Event()  # set by default; tests may hold loading back
        self.load_gate.set()
        self.stats: dict[str, Any] = {}
        self.albums: dict[str, Album] = {}
        self._int_of: dict[str, int] = {}
        self._album_of: dict[int, str] = {}
        self.same_images = SameImages()
        self._next_id = 0
        self._write_lock = threading.Lock()
        self._closing = threading.Event()
        self.on_ready: Callable[[], None] | None = None  # called once loaded (the READY line)
        self.embedder: Embedder | None = None
        self.store: AlbumStore | None = None
        self.cache: EmbeddingCache | None = None
        self.index: VectorIndex | None = None
        self.reranker = (
            Reranker(settings.rerank_cache, accept_inliers=settings.rerank_accept_inliers,
                     max_pixels=settings.max_image_pixels)
            if settings.rerank else None
        )

    @property
    def ready(self) -> bool:
        return self.state == "ready"

    @property
    def model_version(self) -> str:
        return self.embedder.version if self.embedder else ""

    def load(self) -> None:
        """Load model, catalog, enrolled albums, cache and index; never raises."""
        self.load_gate.wait()
        if self._closing.is_set():
            return
        try:
            self._load()
        except Exception as exc:  # a bad model or data dir must not kill the process silently
            if self._closing.is_set():
                log.info("loading abandoned: shutting down")
                return
            log.exception("loading failed")
            self.error = f"{type(exc).__name__}: {exc}"
            self.state = "failed"
            return
        self.state = "ready"
        self.metrics.ready.set(1)
        log.info("ready: %s", self.stats)
        if self.on_ready is not None:
            self.on_ready()
        if self.reranker is not None:
            self._warm_reranker()

    def _warm_reranker(self) -> None:
        """Compute catalog covers' local features after ready, so early queries do not pay
        for them (a cold candidate costs a SIFT extraction); stops at shutdown."""
        assert self.reranker is not None
        ok = [a for a in list(self.albums.values()) if a.image_status == "ok"]
        paths = [a.image_path for a in ok[: self.reranker.cache_size]]
        started = time.perf_counter()
        for path in paths:
            if self._closing.is_set():
                return
            self.reranker.warm(path)
        log.info("re-rank features of %d covers ready in %.1f s", len(paths),
                 time.perf_counter() - started)

    def _load(self) -> None:
        s = self.settings
        started = time.perf_counter()
        # One FAISS thread: a single-query search over 100k vectors takes ~3 ms on one core,
        # while an OpenMP team of 2 on a busy CPU waits at its barrier (p90 0.014 -> 8 ms
        # measured on 990 vectors). Parallelism comes from concurrent requests instead.
        faiss.omp_set_num_threads(1)
        embedder = self.embedder = Embedder(s.model, threads=s.threads)
        info = embedder.info
        self.metrics.model_info.labels(
            name=info.name, version=info.version, input_size=str(info.input_size),
            embedding_dim=str(info.embedding_dim),
        ).set(1)
        report = load_catalog(s.catalog)
        store = self.store = AlbumStore(s.data)
        deleted = store.deleted_ids()
        albums = {a.album_id: a for a in report.albums if a.album_id not in deleted}
        for album in store.albums():
            albums[album.album_id] = album  # an enrolled album shadows a catalog row
        cache = self.cache = EmbeddingCache(s.data / "embeddings.sqlite3", info.version,
                                            embedder.dim)
        items = list(albums.values())
        digests = [cache.readable_file_hash(a.image_path) for a in items]
        for album, digest in zip(items, digests, strict=True):
            if not digest:
                album.image_status = "missing"
        readable = [i for i, d in enumerate(digests) if d]
        vectors, embedded = embed_with_cache(
            cache, [digests[i] for i in readable],
            lambda idx: self._embed_files([items[readable[i]].image_path for i in idx]),
            s.embed_batch_size,
        )
        usable = np.linalg.norm(vectors, axis=1) > 0
        for i, ok in zip(readable, usable, strict=True):
            items[i].sha256 = digests[i]
            if not ok:
                items[i].image_status = "unreadable"
        # Every album is registered (visible, deletable); only those with an image are indexed.
        iids = [self._register(album) for album in items]
        ids = np.array([iid for iid, a in zip(iids, items, strict=True)
                        if a.image_status == "ok"], dtype=np.int64)
        self.index = VectorIndex.build(ids, vectors[usable].reshape(-1, embedder.dim),
                                       s.exact_search_limit, s.approx_index)
        self.metrics.catalog_albums.set(self.index.ntotal)
        status = [a.image_status for a in items]
        self.stats = {
            "albums": len(self.albums), "searchable": len(ids), "embedded": embedded,
            "cached": len(readable) - embedded, "skipped_rows": len(report.skipped),
            "undecodable": status.count("unreadable"), "missing_images": status.count("missing"),
            "index": self.index.kind, "load_seconds": round(time.perf_counter() - started, 3),
        }
        if self.index.kind != "flat":
            self._log_recall(ids, vectors[usable])

    def _log_recall(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        assert self.index is not None
        rng = np.random.default_rng(0)
        sample = vectors[rng.choice(len(vectors), size=min(200, len(vectors)), replace=False)]
        recall = recall_at_k(self.index, vectors, ids, sample, 10)
        self.stats["recall_at_10"] = round(recall, 4)
        log.info("%s index recall@10 vs exact on %d queries: %.4f", self.index.kind,
                 len(sample), recall)

    def _embed_files(self, paths: list[Path]) -> np.ndarray:
        """Decode and embed catalog files; an undecodable file yields a zero row (dropped)."""
        assert self.embedder is not None
        if self._closing.is_set():
            raise RuntimeError("shutting down")
        out = np.zeros((len(paths), self.embedder.dim), dtype=np.float32)
        images, rows = [], []
        for row, path in enumerate(paths):
            try:
                images.append(decode_image(path.read_bytes(), self.settings.max_image_pixels)[0])
                rows.append(row)
            except (OSError, ValueError) as exc:
                log.warning("skipping %s: cannot decode (%s)", path, exc)
        if images:
            out[rows] = self.embedder.embed_images(images)
        return out

    def _new_iid(self) -> int:
        self._next_id += 1
        return self._next_id - 1

    def _register(self, album: Album, iid: int | None = None) -> int:
        iid = self._new_iid() if iid is None else iid
        self.albums[album.album_id] = album
        self._int_of[album.album_id] = iid
        self._album_of[iid] = album.album_id
        self.same_images.add(album.sha256, album.album_id)
        return iid

    def _unregister(self, album: Album) -> None:
        self.albums.pop(album.album_id, None)
        iid = self._int_of.pop(album.album_id)
        self._album_of.pop(iid, None)
        self.same_images.remove(album.sha256, album.album_id)
        if album.image_status == "ok":
            assert self.index is not None
            self.index.remove([iid])

    def identify(self, data: bytes, k: int) -> dict[str, Any]:
        """Decode -> embed -> search -> optional re-rank; returns the response body."""
        assert self.embedder is not None and self.index is not None
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        image, _ = decode_image(data, self.settings.max_image_pixels)
        t1 = time.perf_counter()
        vector = self.embedder.embed_images([image])
        t2 = time.perf_counter()
        fetch = max(k, self.settings.rerank_top_k) if self.reranker else k
        scores, ids = self.index.search(vector, fetch)
        t3 = time.perf_counter()
        timings.update(decode=(t1 - t0) * 1e3, embed=(t2 - t1) * 1e3, search=(t3 - t2) * 1e3)
        found = [
            (self.albums[aid], float(score))
            for score, iid in zip(scores[0], ids[0], strict=True)
            if (aid := self._album_of.get(int(iid))) is not None and aid in self.albums
        ]
        evidence = [Verified(0, 0.0)] * len(found)
        verified = False
        if self.reranker and len(found) > 1:
            top = found[: self.settings.rerank_top_k]
            order, checked = self.reranker.order(image, [a.image_path for a, _ in top])
            found = [top[i] for i in order] + found[len(top) :]
            evidence = [checked[i] for i in order] + evidence[len(top) :]
            verified = True
            timings["rerank"] = (time.perf_counter() - t3) * 1e3
        self.metrics.observe_stages(timings)
        decision = decide(self.calibration, Evidence(
            album_id=found[0][0].album_id if found else None,
            score=found[0][1] if found else 0.0,
            margin=_margin(found), inliers=evidence[0].inliers if found else 0,
            coverage=evidence[0].coverage if found else 0.0, verified=verified))
        self.metrics.decisions.labels(decided_by=decision.decided_by,
                                      identified=str(decision.identified is not None).lower()).inc()
        matches = [
            {"rank": rank, "album_id": a.album_id, "artist": a.artist, "title": a.title,
             "score": round(score, 6), "inliers": ev.inliers, "metadata": a.metadata}
            for rank, ((a, score), ev) in enumerate(zip(found[:k], evidence, strict=False),
                                                    start=1)
        ]
        return {"identified": decision.identified, "confidence": round(decision.confidence, 4),
                "decided_by": decision.decided_by, "matches": matches,
                "model_version": self.model_version,
                "timings_ms": {name: round(ms, 3) for name, ms in timings.items()}}

    def add(self, data: bytes, album_id: str | None, artist: str, title: str,
            metadata: dict[str, str]) -> Album:
        """Enrol an album, all or nothing (see service/enrol.py): durable on disk and searchable,
        or an exception with nothing stored. Raises AlbumExists, DuplicateImage (when
        ``reject_duplicate_images``), StorageFull, StorageBusy."""
        assert self.embedder and self.store and self.cache and self.index
        store, cache, index = self.store, self.cache, self.index
        image, suffix = decode_image(data, self.settings.max_image_pixels)
        vector = self.embedder.embed_images([image])
        digest = sha256_bytes(data)
        album_id = album_id or uuid.uuid4().hex[:16]
        with self._write_lock:
            if album_id in self.albums:
                raise AlbumExists(album_id)
            same = self.same_images.first(digest)
            if same is not None and self.settings.reject_duplicate_images:
                raise DuplicateImage(album_id, same)
            iid = self._new_iid()  # taken now, given to the album only once it is stored
            stored: list[Album] = []
            run_all_or_nothing([
                Step("embedding cache", lambda: cache.put_many([(digest, vector[0])])),
                # Searches skip an id with no album yet, so indexing before the commit is safe.
                Step("index", lambda: index.add(np.array([iid]), vector),
                     undo=lambda: index.remove([iid])),
                Step("album record", lambda: stored.append(
                    store.add(album_id, artist, title, metadata, data, suffix))),
            ])
            album = stored[0]
            album.sha256 = digest
            self._register(album, iid)
            self.metrics.catalog_albums.set(self.index.ntotal)
        return album

    def delete(self, album_id: str) -> None:
        """Remove an album durably and from the index; raises AlbumNotFound, StorageFull."""
        assert self.store and self.index
        with self._write_lock:
            album = self.albums.get(album_id)
            if album is None:
                raise AlbumNotFound(album_id)
            with storage_errors("nothing was deleted"):
                self.store.delete(album_id)
            if self.reranker is not None:
                # Re-enrolling the id later may write a different image to the same path.
                self.reranker.forget(album.image_path)
            self._unregister(album)
            self.metrics.catalog_albums.set(self.index.ntotal)

    @property
    def calibration(self) -> Calibration:
        """The model's calibration (sidecar) with any settings overrides applied."""
        base = (self.embedder.info.calibration if self.embedder else None) or DEFAULT
        s = self.settings
        return with_overrides(base, accept_inliers=s.accept_inliers,
                              accept_coverage=s.accept_coverage, gate_score=s.gate_score,
                              gate_margin=s.gate_margin)

    def stop_loading(self) -> None:
        """Ask a load in progress to stop at the next batch (shutdown)."""
        self._closing.set()
        self.load_gate.set()

    def close(self) -> None:
        self.stop_loading()
        with self._write_lock:
            for part in (self.store, self.cache):
                if part is not None:
                    part.close()


def _margin(found: list[tuple[Album, float]]) -> float:
    """Cosine gap between the first two albums (1.0 when there is only one)."""
    if len(found) < 2:
        return 1.0
    return found[0][1] - found[1][1]
