"""Triplet margin loss on triplets a miner chose."""

from __future__ import annotations

import torch

from training.miner import Triplets


def triplet_margin_loss(emb: torch.Tensor, triplets: Triplets, margin: float) -> torch.Tensor:
    """Mean of ``max(0, d(a,p) - d(a,n) + margin)`` over the triplets (Euclidean distance).

    With no triplets the loss is a zero that still belongs to the graph, so ``backward`` works.
    """
    a, p, n = triplets
    if len(a) == 0:
        return emb.sum() * 0.0
    d_ap = (emb[a] - emb[p]).pow(2).sum(1).clamp_min(1e-12).sqrt()
    d_an = (emb[a] - emb[n]).pow(2).sum(1).clamp_min(1e-12).sqrt()
    return torch.relu(d_ap - d_an + margin).mean()
