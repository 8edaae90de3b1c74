"""One query through the catalog: embedding search, gate, local-feature votes, verification.

    embed -> top-K by cosine ──gate open──> answer (decided_by "embedding")
                    │ gate closed
    RootSIFT of the query -> verify the embedding's first few ──one strong──> answer ("verified")
                    │ none strong
    descriptor votes -> top-K by votes
    candidates = embedding top-K ∪ vote top-K, in fused order (cosine + VOTE_WEIGHT * votes
    share), verified on stored features until one is strong -> ranking + decision ("verified")

Measured on the stress set (benchmarks/stress.py): the union recalls the true cover far more
often than either path; ordering unverified candidates by cosine + vote share beats either
order alone; candidates with accepted geometric evidence go first, by inliers. Votes are the
costliest stage (a FAISS search per query descriptor), and when the embedding's first few
candidates already hold a strongly verified cover they would not change the answer: they run
only when that first look finds none (benchmarks/stages.py measures the split).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

import numpy as np
from PIL import Image

from service.album_index import AlbumIndex
from service.catalog import Album
from service.decision import Calibration, Decision, Evidence, decide, gate_open
from service.features import Extractor, LocalFeatures
from service.verify import UNVERIFIED, Verified, Verifier

if TYPE_CHECKING:
    from service.rectify import SecondLook

T = TypeVar("T")
R = TypeVar("R")
VOTE_WEIGHT = 0.3  # a cover with the most votes gains this much cosine in the fused order


@dataclass(frozen=True)
class RetrievalConfig:
    embed_top_k: int = 10  # embedding candidates verified
    vote_top_k: int = 10  # vote candidates verified
    # A verified candidate this strong (inliers and share of the cover grid) ends verification
    # (stop_inliers 0: never). Its own thresholds, not the calibration's, so that calibrate
    # (which collects with acceptance wide open) stops exactly where the service does.
    stop_inliers: int = 40
    stop_coverage: float = 0.0
    first_k: int = 0  # embedding candidates verified before the votes run (0: votes always)
    local: bool = True  # the local-feature path at all


@dataclass(frozen=True)
class Match:
    album: Album
    score: float  # cosine of the embeddings (for vote-only candidates: at most this)
    votes: int = 0
    evidence: Verified = UNVERIFIED
    rect_cosine: float = 0.0  # cosine of its own homography's rectified sleeve (service/rectify)


@dataclass
class Result:
    matches: list[Match]
    decision: Decision
    timings_ms: dict[str, float] = field(default_factory=dict)
    # What calibration needs: the embedding's own first album and its score and margin,
    # and every candidate verified (empty when the gate answered).
    embedding_first: str | None = None
    score: float = 0.0
    margin: float = 0.0
    checked: list[Match] = field(default_factory=list)
    rechecked: list[Match] = field(default_factory=list)  # by the second look (loose framing)
    grey: bool = False  # a grey query, ranked against the catalog's grey views


class Retriever:
    """Stateless per query; reads the AlbumIndex (which locks its own writes)."""

    def __init__(self, albums: AlbumIndex, extractor: Extractor, verifier: Verifier,
                 config: RetrievalConfig, second: SecondLook | None = None) -> None:
        self.albums, self.extractor, self.verifier, self.config = (
            albums, extractor, verifier, config)
        self.second = second

    def embedding_matches(self, vector: np.ndarray, k: int, grey: bool = False) -> list[Match]:
        """Top-k albums by cosine, in the grey views for a grey query (``AlbumIndex.view``)."""
        scores, ids = self.albums.view(grey).search(vector, k)
        out = []
        for score, iid in zip(scores[0], ids[0], strict=True):
            album = self.albums.album_of(int(iid)) if iid >= 0 else None
            if album is not None:
                out.append(Match(album, float(score)))
        return out

    def run(self, image: Image.Image, vector: np.ndarray, k: int, cal: Calibration,
            timings: dict[str, float], pending: Future[LocalFeatures] | None = None,
            always_second: bool = False, helper: Executor | None = None, grey: bool = False
            ) -> Result:
        """``pending``: the query's local features already being computed (alongside the
        embedding); dropped when the gate answers, else waited for. ``always_second``: run
        the second look even after an accepted first pass (calibration replays it).
        ``helper``: an idle thread (the engine has no other query in flight) that takes half
        of the votes' searches and every other verification; the result is the same.
        ``grey``: a grey query (``preprocess.is_grey``), ranked against the grey views."""
        c = self.config
        t0 = time.perf_counter()
        found = self.embedding_matches(vector, max(k, c.embed_top_k) + 1, grey)
        timings["search"] = (time.perf_counter() - t0) * 1e3
        score, margin = _top(found)
        first = found[0].album.album_id if found else None
        if not c.local or gate_open(cal, score, margin) or not found:
            if pending is not None:
                pending.cancel()  # a running extraction finishes unused: cv2 cannot stop
            return Result(found[:k], decide(cal, _evidence(found, score, margin, False)),
                          timings, first, score, margin, grey=grey)
        t1 = time.perf_counter()
        query = pending.result() if pending is not None else self.extractor.query(image)
        t2 = time.perf_counter()
        timings["features"] = (t2 - t1) * 1e3
        qf = query.float_desc()
        # First look: the embedding's own first candidates, all of them (a wrong one that
        # happens to be strong must not hide a stronger right one behind it), no votes.
        checked = self._check(query, qf, found[: c.first_k], stop=False, helper=helper)
        cands = found[: c.embed_top_k]
        votes: dict[int, int] = {}
        if not any(self._strong(m.evidence) for m in checked):
            t3 = time.perf_counter()
            votes = self.albums.descriptors.votes(query, helper)
            timings["votes"] = (time.perf_counter() - t3) * 1e3
            cands = self._candidates(found, votes)
            seen = {m.album.album_id for m in checked}
            checked += self._check(query, qf, [m for m in cands if m.album.album_id not in seen],
                                   helper=helper)
        # Verification of both passes: everything since the features but the votes.
        timings["verify"] = (time.perf_counter() - t2) * 1e3 - timings.get("votes", 0.0)
        ranked = self._rank(checked, cands, found, cal)
        again: list[Match] = []
        if self.second is not None and (always_second or not accepted(ranked[0].evidence, cal)):
            t5 = time.perf_counter()
            ranked, again = self.second.look(self, image, vector, query, ranked, checked, votes,
                                            cal, helper, grey)
            timings["second"] = (time.perf_counter() - t5) * 1e3
        return Result(ranked[:k], decide(cal, _evidence(ranked, score, margin, True)), timings,
                      first, score, margin, checked, again, grey)

    def _candidates(self, found: list[Match], votes: dict[int, int]) -> list[Match]:
        """Embedding top-K ∪ vote top-K in fused order."""
        c = self.config
        by_id = {m.album.album_id: m for m in found[: c.embed_top_k]}
        floor = found[-1].score if found else 0.0
        top_votes = sorted(votes.items(), key=lambda kv: -kv[1])[: c.vote_top_k]
        for iid, _ in top_votes:
            album = self.albums.album_of(iid)
            if album is not None and album.album_id not in by_id:
                by_id[album.album_id] = Match(album, floor)
        most = max(votes.values(), default=0) or 1
        cands = []
        for m in by_id.values():
            own = self.albums.iid_of(m.album.album_id)
            n = votes.get(own, 0) if own is not None else 0
            cands.append(Match(m.album, m.score, n))
        return sorted(cands, key=lambda m: -(m.score + VOTE_WEIGHT * m.votes / most))

    def _strong(self, ev: Verified) -> bool:
        c = self.config
        return bool(c.stop_inliers) and ev.inliers >= c.stop_inliers \
            and ev.coverage >= c.stop_coverage

    def _check(self, query: LocalFeatures, qf: np.ndarray, cands: list[Match],
               stop: bool = True, helper: Executor | None = None) -> list[Match]:
        """Verify these candidates in order, up to and including the first strong one
        (``stop``), else all of them."""

        def verify(m: Match) -> Match:
            iid = self.albums.iid_of(m.album.album_id)
            feats = self.albums.features.get(iid) if iid is not None else None
            ev = self.verifier.match(query, feats, qf) if feats is not None else UNVERIFIED
            return Match(m.album, m.score, m.votes, ev)

        return in_order(verify, cands, helper, (lambda m: self._strong(m.evidence)) if stop
                        else None)

    def _rank(self, checked: list[Match], cands: list[Match], found: list[Match],
              cal: Calibration) -> list[Match]:
        """Accepted candidates first, by inliers; then the rest in candidate order."""
        by_id = {m.album.album_id: m for m in checked}
        pool = [by_id.pop(m.album.album_id, m) for m in cands] + list(by_id.values())
        sure = sorted((m for m in pool if accepted(m.evidence, cal)),
                      key=lambda m: -m.evidence.inliers)
        rest = [m for m in pool if not accepted(m.evidence, cal)]
        seen = {m.album.album_id for m in pool}
        return sure + rest + [m for m in found if m.album.album_id not in seen]


def in_order(fn: Callable[[T], R], items: Sequence[T], helper: Executor | None = None,
             stop: Callable[[R], bool] | None = None) -> list[R]:
    """``[fn(x) for x in items]``, ended after the first result ``stop`` accepts. With a
    ``helper`` thread two items run at once (the second there); results past the stopping one
    are dropped, so the list is the one a plain loop gives. Verification (FAISS, OpenCV)
    releases the GIL, so the pair uses both cores of an otherwise idle engine."""
    out: list[R] = []
    for i in range(0, len(items), 2 if helper is not None else 1):
        later = helper.submit(fn, items[i + 1]) if helper and i + 1 < len(items) else None
        out.append(fn(items[i]))
        if stop is not None and stop(out[-1]):
            if later is not None:
                later.cancel()  # may be running already: its result is ignored
            break
        if later is not None:
            out.append(later.result())
            if stop is not None and stop(out[-1]):
                break
    return out


def accepted(ev: Verified, cal: Calibration) -> bool:
    """Geometric evidence the calibration accepts (inliers spread over enough of the cover)."""
    return ev.inliers >= cal.accept_inliers and ev.coverage >= cal.accept_coverage


def _top(found: list[Match]) -> tuple[float, float]:
    """Top cosine and its margin over the second album (1.0 when there is only one)."""
    if not found:
        return 0.0, 0.0
    second = found[1].score if len(found) > 1 else found[0].score - 1.0
    return found[0].score, found[0].score - second


def _evidence(ranked: list[Match], score: float, margin: float, verified: bool) -> Evidence:
    first = ranked[0] if ranked else None
    ev = first.evidence if first else UNVERIFIED
    return Evidence(album_id=first.album.album_id if first else None, score=score,
                    margin=margin, inliers=ev.inliers, coverage=ev.coverage, verified=verified,
                    rect_cosine=first.rect_cosine if first else 0.0)
