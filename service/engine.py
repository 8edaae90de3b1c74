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

from service.album_index import AlbumIndex, IndexConfig
from service.alongside import Alongside
from service.cache import EmbeddingCache, SameImages, embed_views_with_cache, sha256_bytes, view_key
from service.catalog import Album, load_catalog
from service.config import Settings
from service.decision import DEFAULT, Calibration, with_overrides
from service.embedder import GREY_VIEW, Embedder
from service.enrol import Step, run_all_or_nothing, storage_errors
from service.feature_store import FeatureStore, features_with_store
from service.features import Extractor, FeatureConfig, LocalFeatures
from service.imaging import decode_image
from service.index import recall_at_k, single_thread_faiss
from service.metrics import Metrics
from service.preprocess import is_grey
from service.rectify import LooseConfig, SecondLook
from service.retrieve import Result, RetrievalConfig, Retriever
from service.store import AlbumExists, AlbumStore
from service.verify import Verifier

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
        self._write_lock = threading.Lock()
        self._closing = threading.Event()
        self.on_ready: Callable[[], None] | None = None  # called once loaded (the READY line)
        self.embedder: Embedder | None = None
        self.views: tuple[str, ...] = ("",)  # catalog views embedded (see Embedder.catalog_views)
        self.store: AlbumStore | None = None
        self.cache: EmbeddingCache | None = None
        self.feature_store: FeatureStore | None = None
        self.extractor = Extractor(FeatureConfig(max_features=settings.local_features,
                                                 query_features=settings.local_query_features,
                                                 query_side=settings.local_query_side))
        # Work for the idle second core while a query runs alone: its features next to its
        # embedding (SPECULATIVE_FEATURES), half of its votes and verifications (PARALLEL_ALONE).
        self.speculative = settings.speculative_features
        self.parallel_alone = settings.parallel_alone
        self.alongside = Alongside(settings.rerank and (self.speculative or self.parallel_alone),
                                   initializer=single_thread_faiss)
        self.catalog = AlbumIndex(1, self._index_config(), local=settings.rerank)
        self.retriever = self._retriever()

    def _index_config(self) -> IndexConfig:
        s = self.settings
        return IndexConfig(s.exact_search_limit, s.approx_index, s.local_index,
                           s.local_exact_limit, s.local_nprobe, trained_dir=s.data,
                           feature_key=self.extractor.config.key,
                           grey_views=GREY_VIEW in self.views)

    def _retriever(self) -> Retriever:
        s = self.settings
        loose = LooseConfig()
        second = (SecondLook(self.embedder.embed_images, loose)
                  if self.embedder is not None and s.second_look else None)
        # Verification skips RANSAC below the fewest inliers any rule reads (see Verifier).
        rules = [loose.min_inliers, self.calibration.accept_inliers]
        rules += [s.rerank_accept_inliers] if s.rerank_accept_inliers else []
        verifier = Verifier(self.extractor.config.side, min_matches=min(rules))
        return Retriever(self.catalog, self.extractor, verifier,
                         RetrievalConfig(s.rerank_top_k, s.vote_top_k, s.rerank_accept_inliers,
                                         s.rerank_stop_coverage, s.rerank_first_k, s.rerank),
                         second)

    @property
    def albums(self) -> dict[str, Album]:
        return self.catalog.albums

    @property
    def same_images(self) -> SameImages:
        return self.catalog.same_images

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

    def _load(self) -> None:
        s = self.settings
        started = time.perf_counter()
        # One FAISS thread: a single-query search over 100k vectors takes ~3 ms on one core,
        # while an OpenMP team of 2 on a busy CPU waits at its barrier (p90 0.014 -> 8 ms
        # measured on 990 vectors). Parallelism comes from concurrent requests instead.
        faiss.omp_set_num_threads(1)
        embedder = self.embedder = Embedder(s.model, threads=s.threads, spinning=s.ort_spinning)
        info = embedder.info
        self.views = embedder.catalog_views(s.grey_views)
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
        views, embedded = embed_views_with_cache(
            cache, [digests[i] for i in readable], self.views,
            lambda idx, want: self._embed_files([items[readable[i]].image_path for i in idx],
                                                want),
            s.embed_batch_size,
        )
        vectors = views[0]
        usable = (np.linalg.norm(views, axis=2) > 0).all(axis=0)
        for i, ok in zip(readable, usable, strict=True):
            items[i].sha256 = digests[i]
            if not ok:
                items[i].image_status = "unreadable"
        # Every album is registered (visible, deletable); only those with an image are indexed.
        catalog = self.catalog = AlbumIndex(embedder.dim, self._index_config(), s.rerank)
        self.retriever = self._retriever()
        iids = [catalog.register(album) for album in items]
        ok = [i for i, a in enumerate(items) if a.image_status == "ok"]
        feats = self._catalog_features([items[i] for i in ok])
        catalog.build([iids[i] for i in ok], vectors[usable].reshape(-1, embedder.dim), feats,
                      views[1][usable] if GREY_VIEW in self.views else None)
        self.metrics.catalog_albums.set(catalog.searchable)
        status = [a.image_status for a in items]
        self.stats = {
            "albums": len(items), "searchable": len(ok), "embedded": embedded,
            "cached": len(readable) - embedded, "skipped_rows": len(report.skipped),
            "undecodable": status.count("unreadable"), "missing_images": status.count("missing"),
            **catalog.stats(), "load_seconds": round(time.perf_counter() - started, 3),
        }
        if self.feature_store is not None:
            self.stats["features_extracted"] = self.feature_store.extracted
        if catalog.vectors.kind != "flat":
            self._log_recall(np.array([iids[i] for i in ok]), vectors[usable])

    def _catalog_features(self, albums: list[Album]) -> list[LocalFeatures | None]:
        """Local features of these covers: from the feature store, else extracted and stored."""
        if not self.settings.rerank:
            return [None] * len(albums)
        store = self.feature_store = FeatureStore(self.settings.data / "features.sqlite3",
                                                  self.extractor.config.key)

        def extract(i: int) -> LocalFeatures | None:
            try:
                data = albums[i].image_path.read_bytes()
                image = decode_image(data, self.settings.max_image_pixels)[0]
            except (OSError, ValueError):
                return None
            return self.extractor.catalog(image)

        return features_with_store(store, [a.sha256 for a in albums], extract,
                                   workers=self.settings.threads, closing=self._closing.is_set)

    def _log_recall(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        index = self.catalog.vectors
        rng = np.random.default_rng(0)
        sample = vectors[rng.choice(len(vectors), size=min(200, len(vectors)), replace=False)]
        recall = recall_at_k(index, vectors, ids, sample, 10)
        self.stats["recall_at_10"] = round(recall, 4)
        log.info("%s index recall@10 vs exact on %d queries: %.4f", index.kind,
                 len(sample), recall)

    def _embed_files(self, paths: list[Path], views: tuple[str, ...]) -> np.ndarray:
        """Decode catalog files once and embed these views of them, ``(views, files, dim)``;
        an undecodable file yields zero rows (dropped)."""
        assert self.embedder is not None
        if self._closing.is_set():
            raise RuntimeError("shutting down")
        out = np.zeros((len(views), len(paths), self.embedder.dim), dtype=np.float32)
        images, rows = [], []
        for row, path in enumerate(paths):
            try:
                images.append(decode_image(path.read_bytes(), self.settings.max_image_pixels)[0])
                rows.append(row)
            except (OSError, ValueError) as exc:
                log.warning("skipping %s: cannot decode (%s)", path, exc)
        if images:
            out[:, rows] = self.embedder.embed_views(images, views)
        return out

    def identify(self, data: bytes, k: int) -> dict[str, Any]:
        """Decode -> embed -> retrieve (gate, votes, verification) -> decision; the response."""
        result = self.retrieve(data, k, self.calibration)
        self.metrics.observe_stages(result.timings_ms)
        d = result.decision
        self.metrics.decisions.labels(decided_by=d.decided_by,
                                      identified=str(d.identified is not None).lower()).inc()
        return {"identified": d.identified, "confidence": round(d.confidence, 4),
                "decided_by": d.decided_by, "matches": _shape(result),
                "view": "grey" if result.grey else "colour",
                "model_version": self.model_version,
                "timings_ms": {name: round(ms, 3) for name, ms in result.timings_ms.items()}}

    def retrieve(self, data: bytes, k: int, cal: Calibration, always_second: bool = False
                 ) -> Result:
        """The typed result of one query under calibration ``cal`` (calibrate uses it too)."""
        assert self.embedder is not None
        timings: dict[str, float] = {}
        with self.alongside.query() as early:
            t0 = time.perf_counter()
            image, _ = decode_image(data, self.settings.max_image_pixels)
            t1 = time.perf_counter()
            # Query features start now (next to the embedding) only on an otherwise idle engine.
            pending = self.alongside.start(self.retriever.extractor.query, image) \
                if early and self.speculative \
                else None
            vector = self.embedder.embed_images([image])
            # Classified once: a grey crop is ranked against the covers' grey views throughout.
            grey = GREY_VIEW in self.views and is_grey(image)
            timings.update(decode=(t1 - t0) * 1e3, embed=(time.perf_counter() - t1) * 1e3)
            helper = self.alongside.helper if early and self.parallel_alone else None
            return self.retriever.run(image, vector, k, cal, timings, pending,
                                      always_second, helper, grey)

    def add(self, data: bytes, album_id: str | None, artist: str, title: str,
            metadata: dict[str, str]) -> Album:
        """Enrol an album, all or nothing (see service/enrol.py): durable on disk and searchable,
        or an exception with nothing stored. Raises AlbumExists, DuplicateImage (when
        ``reject_duplicate_images``), StorageFull, StorageBusy."""
        assert self.embedder and self.store and self.cache
        store, cache, catalog = self.store, self.cache, self.catalog
        image, suffix = decode_image(data, self.settings.max_image_pixels)
        vectors = self.embedder.embed_views([image], self.views)[:, 0]  # (views, dim)
        grey = vectors[1] if GREY_VIEW in self.views else None
        feats = self.extractor.catalog(image) if self.feature_store else None
        digest = sha256_bytes(data)
        album_id = album_id or uuid.uuid4().hex[:16]
        with self._write_lock:
            if album_id in self.albums:
                raise AlbumExists(album_id)
            same = self.same_images.first(digest)
            if same is not None and self.settings.reject_duplicate_images:
                raise DuplicateImage(album_id, same)
            iid = catalog.new_iid()  # taken now, given to the album only once it is stored
            stored: list[Album] = []
            steps = [Step("embedding cache", lambda: cache.put_many(
                [(view_key(digest, v), vec) for v, vec in zip(self.views, vectors, strict=True)]))]
            if feats is not None and self.feature_store is not None:
                fstore = self.feature_store
                steps.append(Step("local features", lambda: fstore.put_many([(digest, feats)])))
            run_all_or_nothing([
                *steps,
                # Searches skip an id with no album yet, so indexing before the commit is safe.
                Step("index (both paths)", lambda: catalog.index(iid, vectors[0], feats, grey),
                     undo=lambda: catalog.unindex(iid)),
                Step("album record", lambda: stored.append(
                    store.add(album_id, artist, title, metadata, data, suffix))),
            ])
            album = stored[0]
            album.sha256 = digest
            catalog.register(album, iid)
            self.metrics.catalog_albums.set(catalog.searchable)
        return album

    def delete(self, album_id: str) -> None:
        """Remove an album durably and from the index; raises AlbumNotFound, StorageFull."""
        assert self.store
        with self._write_lock:
            album = self.albums.get(album_id)
            if album is None:
                raise AlbumNotFound(album_id)
            with storage_errors("nothing was deleted"):
                self.store.delete(album_id)
            self.catalog.unregister(album)  # both paths
            self.metrics.catalog_albums.set(self.catalog.searchable)

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
        self.alongside.close()
        with self._write_lock:
            if self.ready:  # a warm restart then loads the filled descriptor index as is
                self.catalog.checkpoint()
            for part in (self.store, self.cache, self.feature_store):
                if part is not None:
                    part.close()


def _shape(result: Result) -> list[dict[str, Any]]:
    return [
        {"rank": rank, "album_id": m.album.album_id, "artist": m.album.artist,
         "title": m.album.title, "score": round(m.score, 6), "inliers": m.evidence.inliers,
         "metadata": m.album.metadata}
        for rank, m in enumerate(result.matches, start=1)
    ]
