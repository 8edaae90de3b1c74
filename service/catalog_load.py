"""Catalog loading at startup: the albums, their embeddings, their local features, both search
paths built over them, and the load statistics ``/readyz`` reports.

The engine drives one :class:`CatalogLoad` in order:

- ``embed``: catalog CSV rows and enrolled albums (an enrolled album shadows a row, a deleted
  id hides it), every readable cover embedded in each catalog view, embedding cache first;
- the engine then makes the empty ``AlbumIndex`` (and the retriever over it): its dimension
  and grey views are the model's, known only once the model is open;
- ``fill``: every album registered, local features from the feature store (else extracted and
  stored), both paths built; ``stats`` and ``recall`` for ``/readyz`` and the log.

Each store goes into the engine's :class:`Stores` the moment it opens, so that a load that
fails or is abandoned half way still has what it opened closed at shutdown.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from service.album_index import AlbumIndex
from service.cache import EmbeddingCache, embed_views_with_cache
from service.catalog import Album, load_catalog
from service.config import Settings
from service.embedder import GREY_VIEW, Embedder
from service.feature_store import FeatureStore, features_with_store
from service.features import Extractor, LocalFeatures
from service.imaging import decode_image
from service.index import recall_at_k
from service.store import AlbumStore

log = logging.getLogger(__name__)


@dataclass
class Stores:
    """The data directory's stores: opened by the load, written by enrolment, closed once."""

    albums: AlbumStore | None = None
    cache: EmbeddingCache | None = None
    features: FeatureStore | None = None  # only with local features (``rerank``)

    def close(self) -> None:
        for part in (self.albums, self.cache, self.features):
            if part is not None:
                part.close()


class CatalogLoad:
    """One startup load of the catalog into an ``AlbumIndex``; every step blocks."""

    def __init__(self, settings: Settings, embedder: Embedder, views: tuple[str, ...],
                 extractor: Extractor, stores: Stores, closing: threading.Event) -> None:
        self.settings, self.embedder, self.views = settings, embedder, views
        self.extractor, self.stores, self.closing = extractor, stores, closing
        self.albums: list[Album] = []
        self.skipped_rows = 0
        self.readable: list[int] = []  # albums whose image file could be read and hashed
        self.vectors = np.zeros((len(views), 0, embedder.dim), dtype=np.float32)
        self.usable = np.zeros(0, dtype=bool)  # per readable album: every view embedded
        self.embedded = 0
        self.indexed: list[int] = []  # iids of the searchable albums, in ``vectors`` order

    def embed(self) -> None:
        """Read the albums and embed every readable cover in each view (cache first)."""
        s = self.settings
        report = load_catalog(s.catalog, s.max_image_pixels)
        self.skipped_rows = len(report.skipped)
        store = self.stores.albums = AlbumStore(s.data)
        deleted = store.deleted_ids()
        albums = {a.album_id: a for a in report.albums if a.album_id not in deleted}
        for album in store.albums():
            albums[album.album_id] = album  # an enrolled album shadows a catalog row
        cache = self.stores.cache = EmbeddingCache(s.data / "embeddings.sqlite3",
                                                   self.embedder.info.version, self.embedder.dim)
        items = self.albums = list(albums.values())
        digests = [cache.readable_file_hash(a.image_path) for a in items]
        for album, digest in zip(items, digests, strict=True):
            if not digest:
                album.image_status = "missing"
        readable = self.readable = [i for i, d in enumerate(digests) if d]
        self.vectors, self.embedded = embed_views_with_cache(
            cache, [digests[i] for i in readable], self.views,
            lambda idx, want: self._embed_files([items[readable[i]].image_path for i in idx],
                                                want),
            s.embed_batch_size,
        )
        self.usable = (np.linalg.norm(self.vectors, axis=2) > 0).all(axis=0)
        for i, ok in zip(readable, self.usable, strict=True):
            items[i].sha256 = digests[i]
            if not ok:
                items[i].image_status = "unreadable"

    def fill(self, catalog: AlbumIndex) -> None:
        """Register every album (visible, deletable); index only those with an image."""
        iids = [catalog.register(album) for album in self.albums]
        ok = [i for i, a in enumerate(self.albums) if a.image_status == "ok"]
        feats = self._features([self.albums[i] for i in ok])
        self.indexed = [iids[i] for i in ok]
        grey = self.vectors[1][self.usable] if GREY_VIEW in self.views else None
        catalog.build(self.indexed, self._colour().reshape(-1, self.embedder.dim), feats, grey)

    def stats(self, catalog: AlbumIndex, started: float) -> dict[str, Any]:
        """What ``/readyz`` and the READY log line report about this load."""
        status = [a.image_status for a in self.albums]
        out: dict[str, Any] = {
            "albums": len(self.albums), "searchable": len(self.indexed),
            "embedded": self.embedded, "cached": len(self.readable) - self.embedded,
            "skipped_rows": self.skipped_rows, "undecodable": status.count("unreadable"),
            "missing_images": status.count("missing"),
            **catalog.stats(), "load_seconds": round(time.perf_counter() - started, 3),
        }
        if self.stores.features is not None:
            out["features_extracted"] = self.stores.features.extracted
        return out

    def recall(self, catalog: AlbumIndex) -> float:
        """Recall@10 of an approximate embedding index against exact search, logged."""
        index, vectors = catalog.vectors, self._colour()
        rng = np.random.default_rng(0)
        sample = vectors[rng.choice(len(vectors), size=min(200, len(vectors)), replace=False)]
        recall = recall_at_k(index, vectors, np.array(self.indexed), sample, 10)
        log.info("%s index recall@10 vs exact on %d queries: %.4f", index.kind,
                 len(sample), recall)
        return round(recall, 4)

    def _colour(self) -> np.ndarray:
        """The covers' own (colour) view of every searchable album."""
        vectors: np.ndarray = self.vectors[0][self.usable]
        return vectors

    def _features(self, albums: list[Album]) -> list[LocalFeatures | None]:
        """Local features of these covers: from the feature store, else extracted and stored."""
        if not self.settings.rerank:
            return [None] * len(albums)
        store = self.stores.features = FeatureStore(self.settings.data / "features.sqlite3",
                                                    self.extractor.config.key)

        def extract(i: int) -> LocalFeatures | None:
            try:
                image = self._decode(albums[i].image_path)
            except (OSError, ValueError):
                return None
            return self.extractor.catalog(image)

        return features_with_store(store, [a.sha256 for a in albums], extract,
                                   workers=self.settings.threads, closing=self.closing.is_set)

    def _embed_files(self, paths: list[Path], views: tuple[str, ...]) -> np.ndarray:
        """Decode catalog files once and embed these views of them, ``(views, files, dim)``;
        an undecodable file yields zero rows (dropped)."""
        if self.closing.is_set():
            raise RuntimeError("shutting down")
        out = np.zeros((len(views), len(paths), self.embedder.dim), dtype=np.float32)
        images, rows = [], []
        for row, path in enumerate(paths):
            try:
                images.append(self._decode(path))
                rows.append(row)
            except (OSError, ValueError) as exc:
                log.warning("skipping %s: cannot decode (%s)", path, exc)
        if images:
            out[:, rows] = self.embedder.embed_views(images, views)
        return out

    def _decode(self, path: Path) -> Image.Image:
        """A catalog cover, decoded under the same pixel limit as a query."""
        return decode_image(path.read_bytes(), self.settings.max_image_pixels)[0]
