"""All-or-nothing writes across several stores, and storage failures a client can act on.

An enrolment writes to several stores: the embedding cache, the in-memory index, the album store
(image file + record), and later the local-feature store of the re-rank. The client must see
either a 201 with the album searchable, or an error with nothing stored (issue 11, defect 1).

The design is an ordered list of :class:`Step`, run by :func:`run_all_or_nothing`:

- everything is computed first (decode, embed, features), outside the write lock;
- derived, content-addressed stores come first (cache rows keyed by sha256: a row left behind
  by a later failure names no album, is reused by the retry and costs only disk);
- the album record commits LAST: it is the commit point. Nothing after it can fail except
  pure dict updates, so a committed record is always a complete, searchable album;
- when a step fails, the steps already done are undone in reverse order, then the error is
  raised, mapped to :class:`StorageFull` (507) or :class:`StorageBusy` (503) when it is one.

A new store joins by adding one Step before the album record, with an ``undo`` when what it
wrote is not harmless to keep.
"""

from __future__ import annotations

import errno
import logging
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

log = logging.getLogger(__name__)

FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
SQLITE_BUSY, SQLITE_LOCKED, SQLITE_FULL = 5, 6, 13


class StorageFull(Exception):
    """The data directory's disk (or quota) is full: answered 507, nothing stored."""


class StorageBusy(Exception):
    """A database is locked by another process: answered 503 + Retry-After, nothing stored."""


@dataclass
class Step:
    """One write of a multi-store operation; ``undo`` reverts it (None: harmless to keep)."""

    name: str
    do: Callable[[], None]
    undo: Callable[[], None] | None = None


def run_all_or_nothing(steps: list[Step]) -> None:
    """Run ``steps`` in order; on a failure undo the ones done (reverse order) and raise."""
    done: list[Step] = []
    try:
        with storage_errors("nothing was stored"):
            for step in steps:
                step.do()
                done.append(step)
    except BaseException:
        failed = steps[len(done)].name if len(done) < len(steps) else "?"
        log.error("write failed at step %r; undoing %s", failed, [s.name for s in done])
        for step in reversed(done):
            if step.undo is None:
                continue
            try:
                step.undo()
            except Exception:  # keep undoing the others; the original error is what matters
                log.exception("undo of step %r failed", step.name)
        raise


def _classify(exc: BaseException, outcome: str) -> Exception | None:
    if isinstance(exc, OSError) and exc.errno in FULL_ERRNOS:
        return StorageFull(f"the data directory is full: {outcome}; free disk space and retry")
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(exc, sqlite3.Error) and code is not None:
        primary = code & 0xFF  # extended result codes keep the primary code in the low byte
        if primary == SQLITE_FULL:
            return StorageFull(f"the data directory is full: {outcome}; free disk space and "
                               "retry")
        if primary in (SQLITE_BUSY, SQLITE_LOCKED):
            return StorageBusy(f"storage is busy (a database is locked by another process): "
                               f"{outcome}; retry")
    return None


@contextmanager
def storage_errors(outcome: str) -> Iterator[None]:
    """Re-raise disk-full and database-locked errors as StorageFull / StorageBusy.

    ``outcome`` tells the client what state it left, e.g. "nothing was stored".
    """
    try:
        yield
    except (OSError, sqlite3.Error) as exc:
        mapped = _classify(exc, outcome)
        if mapped is None:
            raise
        log.error("storage failure: %s (%s)", mapped, exc)
        raise mapped from exc
