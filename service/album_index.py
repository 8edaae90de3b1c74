"""The catalog's one home: albums by id, and both search paths kept in step.

``AlbumIndex`` owns the album map, the internal int64 ids FAISS needs, the embedding index
(``VectorIndex``), for an RGB model with grey views a second embedding index of every cover's
grey rendition (``grey``: grey and IR-night crops are ranked there), the descriptor index of
the local-feature path (``DescriptorIndex``) and every searchable cover's local features in
memory (uint8, no LRU: a verification never decodes a catalog image). Add, remove and rebuild
touch every index under one lock.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from service.cache import SameImages
from service.catalog import Album
from service.descriptor_state import read_state, state_stem
from service.features import LocalFeatures
from service.index import VectorIndex
from service.vote_index import DescriptorIndex

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IndexConfig:
    exact_search_limit: int = 100_000
    approx_index: str = "hnsw"
    local_index: str = "IVF1024,SQ8"
    local_exact_limit: int = 50_000
    local_nprobe: int = 6
    ratio: float = 0.8
    trained_dir: Path | None = None  # where a trained descriptor index is kept (data dir)
    feature_key: str = ""
    grey_views: bool = False  # a second embedding index of the covers' grey renditions


class AlbumIndex:
    """Albums keyed by id; searchable ones are in the embedding index and, when local features
    are on, in the descriptor index with their features in memory."""

    def __init__(self, dim: int, config: IndexConfig, local: bool) -> None:
        self.dim, self.config, self.local = dim, config, local
        self.albums: dict[str, Album] = {}
        self.same_images = SameImages()
        self.features: dict[int, LocalFeatures] = {}
        self._int_of: dict[str, int] = {}
        self._album_of: dict[int, str] = {}
        self._next_id = 0
        self._lock = threading.RLock()
        self.vectors = VectorIndex(dim)
        self.grey: VectorIndex | None = VectorIndex(dim) if config.grey_views else None
        trained = (config.trained_dir / _trained_name(config.local_index, config.feature_key)
                   if config.trained_dir else None)
        self.descriptors = DescriptorIndex(config.local_index, config.local_exact_limit,
                                           config.local_nprobe, config.ratio, trained)
        self._stem = state_stem(config.local_index, config.feature_key)
        self._saved_version = -1
        self._built = False  # an index never built (load abandoned) is never saved
        self.descriptor_source = "built"

    # ------------------------------------------------------------------ ids
    def new_iid(self) -> int:
        with self._lock:
            self._next_id += 1
            return self._next_id - 1

    def album_of(self, iid: int) -> Album | None:
        aid = self._album_of.get(int(iid))
        return None if aid is None else self.albums.get(aid)

    def iid_of(self, album_id: str) -> int | None:
        return self._int_of.get(album_id)

    def register(self, album: Album, iid: int | None = None) -> int:
        """Make an album visible (listed, deletable); searchable only once ``index``-ed."""
        with self._lock:
            iid = self.new_iid() if iid is None else iid
            self.albums[album.album_id] = album
            self._int_of[album.album_id] = iid
            self._album_of[iid] = album.album_id
            self.same_images.add(album.sha256, album.album_id)
            return iid

    def view(self, grey: bool) -> VectorIndex:
        """The embedding index a query is ranked in: the grey views for a grey query (when
        the catalog has them), else the covers as they are."""
        return self.grey if grey and self.grey is not None else self.vectors

    # ------------------------------------------------------------------ both paths
    def build(self, iids: list[int], vectors: np.ndarray,
              features: list[LocalFeatures | None], grey: np.ndarray | None = None) -> None:
        """Startup: both paths over these albums (features None: no local features; ``grey``:
        their grey views' vectors, needed when the index keeps grey views)."""
        c = self.config
        ids = np.asarray(iids, dtype=np.int64)
        with self._lock:
            self.vectors = VectorIndex.build(ids, vectors, c.exact_search_limit, c.approx_index)
            if self.grey is not None:
                if grey is None:
                    raise ValueError("this catalog keeps grey views: their vectors are needed")
                self.grey = VectorIndex.build(ids, grey, c.exact_search_limit, c.approx_index)
            if self.local:
                self.features = {i: f for i, f in zip(iids, features, strict=True)
                                 if f is not None}
                self._built = True
                self.descriptor_source = self._load_descriptors()
                if self.descriptor_source == "built":
                    self.descriptors.build(list(self.features.items()))
                if self.descriptor_source == "loaded":  # the file on disk is this index
                    self._saved_version = self.descriptors.version
                self.checkpoint()

    def _load_descriptors(self) -> str:
        """Take the saved filled descriptor index when it still describes (nearly) these
        albums, patching the difference: "loaded" (nothing to patch), "patched", or "built"
        (nothing usable saved: the caller rebuilds)."""
        d = self.config.trained_dir
        saved = read_state(d, self._stem) if d is not None else None
        if saved is None:
            return "built"
        total = sum(len(f) for f in self.features.values())
        expected = "Flat" if total <= self.config.local_exact_limit else self.config.local_index
        current = {self._album_of[i]: i for i in self.features}
        keep: dict[int, tuple[int, int]] = {}
        for album_id, (sha, start, stop) in saved.spans.items():
            iid = current.get(album_id)
            if (iid is not None and self.albums[album_id].sha256 == sha
                    and stop - start == len(self.features[iid])):
                keep[iid] = (start, stop)
        drop = [(s, e) for a, (_, s, e) in saved.spans.items() if current.get(a) not in keep]
        new = [i for i in self.features if i not in keep]
        # Many changes (or another index kind due): a rebuild re-balances the IVF lists.
        if (saved.kind != expected or len(new) + len(drop) > 0.2 * max(1, len(current))
                or not self.descriptors.adopt(saved.index, saved.kind, keep, saved.next_id,
                                              drop)):
            return "built"
        for iid in new:
            self.descriptors.add(iid, self.features[iid])
        log.info("descriptor index loaded from disk: %d covers kept, %d added, %d dropped",
                 len(keep), len(new), len(drop))
        return "patched" if new or drop else "loaded"

    def checkpoint(self) -> None:
        """Save the filled descriptor index when it changed since the last save (after a
        startup build or patch, and on clean shutdown). Never needed for correctness: the
        next start patches whatever the saved state misses."""
        d = self.config.trained_dir
        with self._lock:
            if (not self.local or d is None or not self._built
                    or self.descriptors.version == self._saved_version):
                return
            names = {i: (self._album_of[i], self.albums[self._album_of[i]].sha256)
                     for i in self.features if i in self._album_of}
            try:
                self.descriptors.saved(names, d, self._stem)
            except (OSError, RuntimeError) as exc:  # a cache: a full disk costs a rebuild
                log.warning("descriptor index not saved: %s", exc)
                return
            self._saved_version = self.descriptors.version

    def index(self, iid: int, vector: np.ndarray, feats: LocalFeatures | None,
              grey: np.ndarray | None = None) -> None:
        """Add one album to both paths (its record may commit later: searches skip ids whose
        album is not registered yet); ``grey``: its grey view, needed when the index keeps
        them."""
        with self._lock:
            if self.grey is not None:
                if grey is None:
                    raise ValueError("this catalog keeps grey views: the vector is needed")
                self.grey.add(np.array([iid]), grey.reshape(1, -1))
            try:
                self.vectors.add(np.array([iid]), vector.reshape(1, -1))
            except BaseException:  # all or nothing: no grey view of an album not indexed
                if self.grey is not None:
                    self.grey.remove([iid])
                raise
            if self.local and feats is not None:
                self.features[iid] = feats
                self.descriptors.add(iid, feats)

    def unindex(self, iid: int) -> None:
        """Remove one album from both paths; an HNSW index (which cannot delete) is rebuilt
        once its hidden entries pile up."""
        with self._lock:
            self.vectors.remove([iid])
            if self.vectors.needs_rebuild():
                self.vectors = self.vectors.rebuilt()
            if self.grey is not None:
                self.grey.remove([iid])
                if self.grey.needs_rebuild():
                    self.grey = self.grey.rebuilt()
            if self.features.pop(iid, None) is not None and self.descriptors.remove(iid):
                self.descriptors.build(list(self.features.items()))

    def unregister(self, album: Album) -> None:
        with self._lock:
            self.albums.pop(album.album_id, None)
            iid = self._int_of.pop(album.album_id)
            self._album_of.pop(iid, None)
            self.same_images.remove(album.sha256, album.album_id)
            if album.image_status == "ok":
                self.unindex(iid)

    @property
    def searchable(self) -> int:
        return self.vectors.ntotal

    def stats(self) -> dict[str, object]:
        out: dict[str, object] = {"index": self.vectors.kind}
        if self.grey is not None:
            out["grey_views"] = self.grey.ntotal
        if self.local:
            out |= {"local_index": self.descriptors.kind, "local_covers": len(self.features),
                    "descriptors": self.descriptors.ntotal,
                    "descriptor_index_from": self.descriptor_source,
                    "descriptors_added": self.descriptors.added,
                    "local_feature_mb": round(sum(f.desc.nbytes + f.points.nbytes
                                                  for f in self.features.values()) / 2**20, 1)}
        return out


def _trained_name(factory: str, feature_key: str) -> str:
    """File of a trained, empty descriptor index: one per (factory string, feature set)."""
    return "descriptors-" + re.sub(r"[^A-Za-z0-9_.-]", "_", f"{factory}-{feature_key}") + ".faiss"
