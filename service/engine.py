"""The identification engine: its state and the four operations the API calls over the parts
(embedder, album index, stores, retriever); loading the catalog is service/catalog_load.py's.

Every method here blocks (decode, ONNX, FAISS, fsync): the API calls them in worker threads.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import faiss

from service.album_index import AlbumIndex, IndexConfig
from service.alongside import Alongside
from service.cache import SameImages, sha256_bytes, view_key
from service.catalog import Album
from service.catalog_load import CatalogLoad, Stores
from service.config import Settings
from service.decision import DEFAULT, Calibration, with_overrides
from service.embedder import GREY_VIEW, Embedder
from service.enrol import Step, run_all_or_nothing, storage_errors
from service.features import Extractor, FeatureConfig
from service.imaging import decode_image
from service.index import single_thread_faiss
from service.metrics import Metrics
from service.preprocess import is_grey
from service.rectify import LooseConfig, SecondLook
from service.retrieve import Result, RetrievalConfig, Retriever
from service.store import AlbumExists
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
        self.stores = Stores()  # filled as the load opens them; closed by close()
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
        embedder = self._open_model()
        load = CatalogLoad(s, embedder, self.views, self.extractor, self.stores, self._closing)
        load.embed()
        # The index is made only now: its dimension and grey views are the model's.
        catalog = self.catalog = AlbumIndex(embedder.dim, self._index_config(), s.rerank)
        self.retriever = self._retriever()
        load.fill(catalog)
        self.metrics.catalog_albums.set(catalog.searchable)
        self.stats = load.stats(catalog, started)
        if catalog.vectors.kind != "flat":
            self.stats["recall_at_10"] = load.recall(catalog)

    def _open_model(self) -> Embedder:
        """The embedder, the catalog views it asks for, and its model_info metric."""
        s = self.settings
        embedder = self.embedder = Embedder(s.model, threads=s.threads, spinning=s.ort_spinning)
        info = embedder.info
        self.views = embedder.catalog_views(s.grey_views)
        measured = info.calibration.measured.get("local_features") if info.calibration else None
        if measured and measured != self.extractor.config.provenance():
            log.warning("the model's calibration was measured with local features %s, this "
                        "service runs %s: its acceptance rates may not hold here (run "
                        "`cratewatch calibrate`)", measured, self.extractor.config.provenance())
        self.metrics.model_info.labels(
            name=info.name, version=info.version, input_size=str(info.input_size),
            embedding_dim=str(info.embedding_dim),
        ).set(1)
        return embedder

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
        assert self.embedder and self.stores.albums and self.stores.cache
        store, cache, catalog = self.stores.albums, self.stores.cache, self.catalog
        image, suffix = decode_image(data, self.settings.max_image_pixels)
        vectors = self.embedder.embed_views([image], self.views)[:, 0]  # (views, dim)
        grey = vectors[1] if GREY_VIEW in self.views else None
        feats = self.extractor.catalog(image) if self.stores.features else None
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
            if feats is not None and self.stores.features is not None:
                fstore = self.stores.features
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
        assert self.stores.albums
        with self._write_lock:
            album = self.albums.get(album_id)
            if album is None:
                raise AlbumNotFound(album_id)
            # Raises only before its commit (file cleanup after it is logged, never raised),
            # so the album leaves the search exactly when its deletion is durable.
            with storage_errors("nothing was deleted"):
                self.stores.albums.delete(album_id)
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
            self.stores.close()


def _shape(result: Result) -> list[dict[str, Any]]:
    return [
        {"rank": rank, "album_id": m.album.album_id, "artist": m.album.artist,
         "title": m.album.title, "score": round(m.score, 6), "inliers": m.evidence.inliers,
         "metadata": m.album.metadata}
        for rank, m in enumerate(result.matches, start=1)
    ]
