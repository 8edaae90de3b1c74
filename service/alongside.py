"""Work a query may start early, next to its embedding, while no other query is in flight.

On an idle 2-core machine the embedding (ONNX Runtime) and the query's RootSIFT extraction
(OpenCV) each leave a core waiting part of the time, so starting the extraction at decode time
takes it off the critical path of a crop the gate does not answer. Under load the other core
is busy with other requests, and the extraction of a crop the gate then answers would be
wasted CPU: so it is started early only while this query is the only one in flight.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")
A = TypeVar("A")


class Alongside:
    """Counts queries in flight; runs one early job at a time in its own thread."""

    def __init__(self, enabled: bool = True,
                 initializer: Callable[[], None] | None = None) -> None:
        self.enabled = enabled
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="alongside",
                                        initializer=initializer)
        self._lock = threading.Lock()
        self._inflight = 0
        self.started = 0  # early jobs started (tests, metrics)

    @contextmanager
    def query(self) -> Iterator[bool]:
        """One query in flight; yields whether it is the only one (may start work early)."""
        with self._lock:
            self._inflight += 1
            alone = self._inflight == 1
        try:
            yield alone and self.enabled
        finally:
            with self._lock:
                self._inflight -= 1

    @property
    def helper(self) -> Executor:
        """The same thread, for the rest of a query that runs alone (``Retriever.run``): the
        early job has been waited for or dropped by then, so the two never queue long."""
        return self._pool

    def start(self, fn: Callable[[A], T], arg: A) -> Future[T]:
        self.started += 1
        return self._pool.submit(fn, arg)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
