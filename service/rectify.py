"""Loose framing: a second look at a crop whose first pass accepted nothing.

A loose crop holds the sleeve in 40-70 % of its area, tilted, with shelf and hands around it:
the whole-crop embedding mostly sees background, and few keypoints land on the sleeve. When the
first pass (``service.retrieve``) accepts nothing, this module looks again:

- rectify: the strongest homography found by verification maps the candidate cover's square
  into the crop; the crop is warped back onto that square (the sleeve, upright, at the cover's
  working scale), embedded and searched, and its own keypoints verified against the candidates;
- windows: overlapping sub-crops of the crop are embedded in one batch and searched, so that a
  sleeve anywhere in the crop has a view with little background.

New candidates are verified like the first pass's, and every candidate is re-scored by its best
cosine over the crop and the views. One new piece of evidence: the rectified sleeve's cosine to
the cover whose homography localised it (``Match.rect_cosine``); ``decision.decide`` accepts it
at the model's calibrated ``rect_cosine`` (``cratewatch calibrate`` replays this whole pass).
The cover's square is assumed: record sleeves are square, and the stored features of a cover
live in its 320 px working frame.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import Executor
from dataclasses import dataclass, replace

import cv2
import numpy as np
from PIL import Image

from service.decision import Calibration
from service.features import FeatureConfig, LocalFeatures
from service.retrieve import VOTE_WEIGHT, Match, Retriever, accepted, in_order
from service.verify import UNVERIFIED, Verified

Embed = Callable[[list[Image.Image]], np.ndarray]


@dataclass(frozen=True)
class LooseConfig:
    rectify: bool = True  # warp the sleeve localised by the best homography, look again
    # Sub-crops: a grid per side (0: none), each this share of the crop's side. 2 x 2 at 85 %
    # measured as well as 3 x 3 at 75 % on the stress calibration half (loose P@1 0.838 vs
    # 0.831, medium 0.877 both, same acceptances) at about half the embedding work.
    windows: int = 2
    window_share: float = 0.85
    # A homography this strong localises the sleeve (4-5 inliers fit almost any 4-5 matches).
    min_inliers: int = 6
    top_k: int = 5  # new candidates (best cosine over the views) verified


def windows(image: Image.Image, grid: int, share: float) -> list[Image.Image]:
    """``grid`` x ``grid`` overlapping sub-crops, each ``share`` of the crop's width and height."""
    if grid < 2:
        return []
    w, h = image.size
    cw, ch = max(1, round(w * share)), max(1, round(h * share))
    out = []
    for j in range(grid):
        for i in range(grid):
            x, y = round((w - cw) * i / (grid - 1)), round((h - ch) * j / (grid - 1))
            out.append(image.crop((x, y, x + cw, y + ch)))
    return out


def sleeve_quad(h: np.ndarray, image_size: tuple[int, int], side: int,
                query_side: int | None = None) -> np.ndarray | None:
    """The cover's corners in crop pixels, from a query->cover homography between the crop at
    its working scale (longer side ``query_side``, default ``side``) and the cover's ``side``
    square; None when they do not form a plausible sleeve (not convex, tiny, far outside)."""
    w, hh = image_size
    scale = (query_side or side) / max(w, hh)  # the extractor's working scale of the crop
    try:
        inv = np.linalg.inv(h)
    except np.linalg.LinAlgError:
        return None
    corners = np.array([[0, 0], [side, 0], [side, side], [0, side]], np.float32)
    quad = cv2.perspectiveTransform(corners.reshape(-1, 1, 2), inv).reshape(-1, 2) / scale
    if not np.all(np.isfinite(quad)) or not cv2.isContourConvex(quad.astype(np.float32)):
        return None
    area = abs(cv2.contourArea(quad.astype(np.float32))) / float(w * hh)
    # A loose crop's sleeve is 40-70 % of it, a tight one's more; a chance homography of a few
    # inliers folds or shrinks the square. The margins leave room for a partly cut-off sleeve.
    if not 0.15 <= area <= 1.6:
        return None
    inside = np.clip(quad, [0, 0], [w, hh])
    if abs(cv2.contourArea(inside.astype(np.float32))) < 0.5 * area * w * hh:
        return None
    return quad


def rectify(image: Image.Image, quad: np.ndarray, side: int) -> Image.Image:
    """The crop's quadrilateral ``quad`` warped onto a ``side`` x ``side`` square."""
    dst = np.array([[0, 0], [side, 0], [side, side], [0, side]], np.float32)
    mat = cv2.getPerspectiveTransform(quad.astype(np.float32), dst)
    arr = np.asarray(image)
    out = cv2.warpPerspective(arr, mat, (side, side), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REPLICATE)
    return Image.fromarray(out)


def strongest(first: Iterable[Match], min_inliers: int) -> Match | None:
    """The verified candidate with most inliers, if it has a homography and enough of them."""
    best = max(first, key=lambda m: m.evidence.inliers, default=None)
    if best is None or best.evidence.homography is None or best.evidence.inliers < min_inliers:
        return None
    return best


class SecondLook:
    """The second pass of ``Retriever.run`` for crops the first pass did not accept."""

    def __init__(self, embed: Embed, config: LooseConfig) -> None:
        self.embed, self.config = embed, config

    def localise(self, image: Image.Image, first: list[Match], features: FeatureConfig
                 ) -> tuple[Match, Image.Image] | None:
        """(the candidate whose homography localises the sleeve, the sleeve rectified)."""
        best = strongest(first, self.config.min_inliers) if self.config.rectify else None
        if best is None or best.evidence.homography is None:
            return None
        side = features.side
        quad = sleeve_quad(best.evidence.homography, image.size, side,
                           features.query_working_side(image.size))
        return (best, rectify(image, quad, side)) if quad is not None else None

    def look(self, r: Retriever, image: Image.Image, vector: np.ndarray, query: LocalFeatures,
             ranked: list[Match], first: list[Match], votes: dict[int, int], cal: Calibration,
             helper: Executor | None = None, grey: bool = False
             ) -> tuple[list[Match], list[Match]]:
        """(new ranking, candidates verified again or anew in this pass).

        ``ranked``: the first pass's ranking; ``first``: the candidates it verified;
        ``helper``: an idle thread (see ``Retriever.run``): the rectified sleeve's features
        are extracted there while the views are embedded, and it takes every other
        verification. ``grey``: a grey query; its views are ranked against the grey views."""
        c = self.config
        found = self.localise(image, first, r.extractor.config)
        rect = found[1] if found is not None else None
        views = ([rect] if rect is not None else []) + windows(image, c.windows, c.window_share)
        if not views:
            return ranked, []
        early = helper.submit(r.extractor.query, rect) if helper and rect is not None else None
        vecs = np.vstack([vector.reshape(1, -1), self.embed(views)])
        done = {m.album.album_id for m in first}
        new = [a for a in _by_cosine(r, vecs[1:], grey) if a not in done][: c.top_k]
        rect_feats = (early.result() if early is not None
                      else r.extractor.query(rect) if rect is not None else None)
        by_id = {m.album.album_id: m for m in ranked}
        aids = [a for a in [m.album.album_id for m in first] + new if a in r.albums.albums]

        def evidence(aid: str) -> Verified:
            prior = by_id.get(aid)
            evs = [prior.evidence] if prior is not None and aid in done else [
                _verify(r, aid, query)]
            if rect_feats is not None:
                evs.append(_verify(r, aid, rect_feats))
            return max(evs, key=lambda e: e.inliers)

        checked: list[Match] = []
        for aid, ev in zip(aids, in_order(evidence, aids, helper), strict=True):
            album, prior = r.albums.albums.get(aid), by_id.get(aid)
            if album is None:  # deleted meanwhile
                continue
            m = Match(album, prior.score if prior else -1.0, _votes(r, aid, votes), ev)
            if found is not None and aid == found[0].album.album_id:
                m = replace(m, rect_cosine=_cosine(r, vecs[1], aid, grey))
            checked.append(m)
            by_id[aid] = m
        return _rank(_rescored(r, vecs, list(by_id.values()), grey), votes, cal), checked


def _cosine(r: Retriever, vector: np.ndarray, album_id: str, grey: bool) -> float:
    """Cosine of ``vector`` to the album's stored embedding in the query's view (0 where the
    index keeps none)."""
    iid = r.albums.iid_of(album_id)
    stored = r.albums.view(grey).vectors_of([iid]) if iid is not None else None
    return float(stored[0] @ vector) if stored is not None else 0.0


def _by_cosine(r: Retriever, vectors: np.ndarray, grey: bool) -> list[str]:
    """Albums in the views' top 10s, by their best cosine over the views."""
    best: dict[str, float] = {}
    for v in vectors:
        for m in r.embedding_matches(v.reshape(1, -1), 10, grey):
            best[m.album.album_id] = max(best.get(m.album.album_id, -1.0), m.score)
    return sorted(best, key=lambda a: -best[a])


def _rescored(r: Retriever, vectors: np.ndarray, matches: list[Match], grey: bool
              ) -> list[Match]:
    """Each match scored by its best cosine over the whole crop and the views. A vote-only
    candidate of the first pass carries only a floor score; its true cosine orders it better."""
    iids = [r.albums.iid_of(m.album.album_id) for m in matches]
    stored = r.albums.view(grey).vectors_of([i for i in iids if i is not None])
    if stored is None or len(stored) != len(matches):
        return matches
    cos = (vectors @ stored.T).max(axis=0)
    return [replace(m, score=float(c)) for m, c in zip(matches, cos, strict=True)]


def _verify(r: Retriever, album_id: str, feats: LocalFeatures) -> Verified:
    iid = r.albums.iid_of(album_id)
    cover = r.albums.features.get(iid) if iid is not None else None
    return r.verifier.match(feats, cover) if cover is not None else UNVERIFIED


def _votes(r: Retriever, album_id: str, votes: dict[int, int]) -> int:
    iid = r.albums.iid_of(album_id)
    return votes.get(iid, 0) if iid is not None else 0


def _rank(matches: list[Match], votes: dict[int, int], cal: Calibration) -> list[Match]:
    """Accepted inliers first (by inliers), then an accepted rectified sleeve, then the rest in
    the first pass's fused order: the order ``decision.decide`` and calibration assume."""
    most = max(votes.values(), default=0) or 1
    sure = sorted((m for m in matches if accepted(m.evidence, cal)),
                  key=lambda m: -m.evidence.inliers)
    rest = [m for m in matches if not accepted(m.evidence, cal)]
    rect = [m for m in rest if m.rect_cosine >= cal.rect_cosine]
    rest = sorted((m for m in rest if m.rect_cosine < cal.rect_cosine),
                  key=lambda m: -(m.score + VOTE_WEIGHT * m.votes / most))
    return sure + rect + rest

