"""The filled descriptor index on disk, so a warm restart need not re-add every descriptor.

Derived data, like the feature store: the index file plus a JSON manifest naming, for every
album it holds, the image sha256 and the [start, stop) range of its descriptor ids. The
manifest is the key: at startup it is compared with the albums about to be indexed, and only
the difference is patched (albums gone or re-imaged removed, new ones added), so a state
written before enrolments or deletes, or before a crash, is never trusted blindly.

Writes are atomic: the index goes to a new uniquely named file first, then the manifest that
names it replaces the old one (the commit point); a reader never sees a manifest pointing at a
half-written index. A damaged file is moved aside and the index rebuilt, never fatal.
"""

from __future__ import annotations

import json
import logging
import os
import re
import uuid
from dataclasses import dataclass
from pathlib import Path

import faiss

from service.features import DIM
from service.store import fsync_dir

log = logging.getLogger(__name__)

FORMAT = 1


@dataclass
class SavedState:
    index: faiss.Index
    kind: str
    spans: dict[str, tuple[str, int, int]]  # album_id -> (image sha256, start, stop)
    next_id: int


def state_stem(factory: str, feature_key: str) -> str:
    """One state per (factory string, feature set): either changing means another index."""
    return "descriptors-filled-" + re.sub(r"[^A-Za-z0-9_.-]", "_", f"{factory}-{feature_key}")


def write_state(directory: Path, stem: str, index: faiss.Index, kind: str,
                spans: dict[str, tuple[str, int, int]], next_id: int) -> Path:
    """Write index + manifest atomically; returns the index file. Older index files go."""
    _sweep(directory, stem)
    token = uuid.uuid4().hex[:12]
    final = directory / f"{stem}.{token}.faiss"
    tmp = final.with_name(final.name + ".tmp")
    try:
        faiss.write_index(index, str(tmp))
        _fsync(tmp)
        os.replace(tmp, final)
    except BaseException:  # a full disk must not leave a half-written file behind
        tmp.unlink(missing_ok=True)
        raise
    manifest = {"format": FORMAT, "file": final.name, "kind": kind, "next_id": next_id,
                "ntotal": int(index.ntotal),
                "albums": [[a, sha, s, e] for a, (sha, s, e) in spans.items()]}
    path = directory / f"{stem}.json"
    tmp_manifest = path.with_name(path.name + ".tmp")
    try:
        tmp_manifest.write_text(json.dumps(manifest, separators=(",", ":")))
        _fsync(tmp_manifest)
        os.replace(tmp_manifest, path)  # the commit point
    except BaseException:
        tmp_manifest.unlink(missing_ok=True)
        final.unlink(missing_ok=True)
        raise
    fsync_dir(directory)
    for old in directory.glob(f"{stem}.*.faiss"):
        if old != final:
            old.unlink(missing_ok=True)
    return final


def read_state(directory: Path, stem: str) -> SavedState | None:
    """The saved state, or None when there is none or it is damaged (moved aside)."""
    path = directory / f"{stem}.json"
    _sweep(directory, stem)
    if not path.is_file():
        return None
    try:
        meta = json.loads(path.read_text())
        if meta.get("format") != FORMAT:
            return None
        file = directory / str(meta["file"])
        index = faiss.read_index(str(file))
        spans = {str(a): (str(sha), int(s), int(e)) for a, sha, s, e in meta["albums"]}
        if index.d != DIM or int(index.ntotal) != int(meta["ntotal"]):
            raise ValueError(f"index holds {index.ntotal} x {index.d}, manifest "
                             f"{meta['ntotal']} x {DIM}")
        return SavedState(index, str(meta["kind"]), spans, int(meta["next_id"]))
    except (OSError, RuntimeError, ValueError, KeyError, TypeError) as exc:
        log.warning("ignoring saved descriptor index %s (%s): rebuilt from stored features",
                    path, exc)
        _move_aside(directory, stem)
        return None


def _sweep(directory: Path, stem: str) -> None:
    """Remove what a writer killed mid-way (kill -9) left: never read, only disk."""
    for left in directory.glob(f"{stem}*.tmp"):
        left.unlink(missing_ok=True)


def _move_aside(directory: Path, stem: str) -> None:
    """Keep a damaged state for inspection, out of the way of the next start."""
    for part in [directory / f"{stem}.json", *directory.glob(f"{stem}.*.faiss")]:
        if part.exists():
            os.replace(part, part.with_name(part.name + f".corrupt-{uuid.uuid4().hex[:6]}"))


def _fsync(path: Path) -> None:
    with path.open("rb") as f:
        os.fsync(f.fileno())
