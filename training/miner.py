"""Triplet miners: pick (anchor, positive, negative) index triplets from a batch; no loss here."""

from __future__ import annotations

import torch

Triplets = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def pairwise_distances(emb: torch.Tensor) -> torch.Tensor:
    """Euclidean distance matrix, with a floor inside the sqrt so gradients stay finite."""
    sq = (emb * emb).sum(1)
    d2 = sq[:, None] + sq[None, :] - 2 * emb @ emb.T
    return d2.clamp_min(1e-12).sqrt()


def _masks(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    return same & ~eye, ~same


def batch_hard(emb: torch.Tensor, labels: torch.Tensor) -> Triplets:
    """For each anchor: its farthest positive and nearest negative (Hermans et al., 2017)."""
    with torch.no_grad():
        d = pairwise_distances(emb)
        pos, neg = _masks(labels)
        valid = pos.any(1) & neg.any(1)
        hardest_p = torch.where(pos, d, torch.full_like(d, -1.0)).argmax(1)
        hardest_n = torch.where(neg, d, torch.full_like(d, float("inf"))).argmin(1)
        anchors = torch.nonzero(valid).flatten()
    return anchors, hardest_p[anchors], hardest_n[anchors]


def semi_hard(emb: torch.Tensor, labels: torch.Tensor, margin: float) -> Triplets:
    """For each positive pair: the nearest negative farther than the positive but inside the margin.

    Pairs with no such negative are skipped (FaceNet, Schroff et al., 2015); gentler than
    batch-hard early in training, when batch-hard from scratch tends to collapse.
    """
    with torch.no_grad():
        d = pairwise_distances(emb)
        pos, neg = _masks(labels)
        a_idx, p_idx = torch.nonzero(pos, as_tuple=True)
        d_ap = d[a_idx, p_idx][:, None]
        d_an = d[a_idx]
        ok = neg[a_idx] & (d_an > d_ap) & (d_an < d_ap + margin)
        cand = torch.where(ok, d_an, torch.full_like(d_an, float("inf")))
        n_idx = cand.argmin(1)
        keep = ok.any(1)
    return a_idx[keep], p_idx[keep], n_idx[keep]
