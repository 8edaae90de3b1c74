"""Per-epoch validation (P@1/P@5 of held-out queries vs every catalog cover), log and curve."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from training.metrics import top_k, top_k_accuracy


@torch.no_grad()
def embed_tensor(model: nn.Module, x: torch.Tensor, batch: int = 128) -> np.ndarray:
    """Embed a preprocessed ``(N, C, S, S)`` tensor in eval mode; returns float32 rows."""
    was_training = model.training
    model.eval()
    out = [model(x[i : i + batch]).numpy() for i in range(0, len(x), batch)]
    model.train(was_training)
    return np.concatenate(out).astype(np.float32)


def validate(model: nn.Module, catalog: np.ndarray, query_x: torch.Tensor, truth: np.ndarray,
             name: str = "val") -> dict[str, float]:
    """``{name}_p1`` / ``{name}_p5``: top-1/top-5 accuracy of the queries against the
    already embedded ``catalog`` rows (brute force, ``training.metrics.top_k``)."""
    ranked = top_k(embed_tensor(model, query_x), catalog, 5)
    return {f"{name}_p1": top_k_accuracy(ranked, truth, 1),
            f"{name}_p5": top_k_accuracy(ranked, truth, 5)}


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
    ax2.plot(ep, [r["val_p1"] for r in rows], "b-o", ms=3, label="ID val P@1")
    if "ood_p1" in rows[-1]:
        ax2.plot(ep, [r.get("ood_p1", np.nan) for r in rows], "r-o", ms=3, label="OOD val P@1")
        ax2.plot(ep, [r.get("ood_loose_p1", np.nan) for r in rows], "m-o", ms=3,
                 label="OOD loose P@1")
    ax2.set_ylim(0, 1)
    ax2.set_ylabel("top-1 accuracy (validation)")
    fig.legend(loc="upper center", ncol=4, fontsize=8)
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    fig.savefig(path, dpi=100)
    plt.close(fig)
