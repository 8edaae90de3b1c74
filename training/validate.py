"""Per-epoch validation (P@1/P@5 of held-out queries vs every catalog cover), log and curve."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import torch
from torch import nn


@torch.no_grad()
def embed_tensor(model: nn.Module, x: torch.Tensor, batch: int = 128) -> np.ndarray:
    """Embed a preprocessed ``(N, C, S, S)`` tensor in eval mode; returns float32 rows."""
    was_training = model.training
    model.eval()
    out = [model(x[i : i + batch]).numpy() for i in range(0, len(x), batch)]
    model.train(was_training)
    return np.concatenate(out).astype(np.float32)


def precision_at(ranked: np.ndarray, truth: np.ndarray, k: int) -> float:
    """Share of queries whose true catalog row is within the first ``k`` ranked rows."""
    return float((ranked[:, :k] == truth[:, None]).any(1).mean())


def rank_catalog(queries: np.ndarray, catalog: np.ndarray, k: int = 5) -> np.ndarray:
    """Top-``k`` catalog rows per query by inner product (embeddings are L2-normalised)."""
    sims = queries @ catalog.T
    return np.argsort(-sims, axis=1)[:, :k]


def validate(
    model: nn.Module, catalog_x: torch.Tensor, query_x: torch.Tensor, truth: np.ndarray
) -> dict[str, float]:
    cat = embed_tensor(model, catalog_x)
    qry = embed_tensor(model, query_x)
    ranked = rank_catalog(qry, cat, 5)
    return {"val_p1": precision_at(ranked, truth, 1), "val_p5": precision_at(ranked, truth, 5)}


def append_log(out_dir: Path, row: dict[str, float]) -> list[dict[str, float]]:
    """Append one epoch row to ``log.csv`` and rewrite ``log.json``; return all rows."""
    json_path = out_dir / "log.json"
    rows: list[dict[str, float]] = json.loads(json_path.read_text()) if json_path.exists() else []
    rows = [r for r in rows if r["epoch"] < row["epoch"]] + [row]
    json_path.write_text(json.dumps(rows, indent=1) + "\n")
    with (out_dir / "log.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(row))
        writer.writeheader()
        writer.writerows(rows)
    return rows


def plot_curve(rows: list[dict[str, float]], path: Path) -> None:
    """Training loss and validation P@1/P@5 per epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ep = [r["epoch"] for r in rows]
    fig, ax1 = plt.subplots(figsize=(7, 4))
    ax1.plot(ep, [r["loss"] for r in rows], "k-", label="train loss")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("triplet loss")
    ax2 = ax1.twinx()
    ax2.plot(ep, [r["val_p1"] for r in rows], "b-o", ms=3, label="val P@1")
    ax2.plot(ep, [r["val_p5"] for r in rows], "g-o", ms=3, label="val P@5")
    ax2.set_ylim(0, 1)
    ax2.set_ylabel("precision (held-out val, medium)")
    fig.legend(loc="upper center", ncol=3, fontsize=8)
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    fig.savefig(path, dpi=100)
    plt.close(fig)
