"""The fit loop: PK batches, mined triplets, per-epoch checkpoints, exact resume, deadline,
in-distribution and OOD validation side by side, checkpoint selection by OOD validation."""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from training import fitdata
from training.config import FitConfig, model_info
from training.data import TrainViews
from training.loss import triplet_margin_loss
from training.miner import batch_hard, semi_hard
from training.model import EmbeddingNet
from training.sampler import PKSampler
from training.validate import append_log, embed_tensor, plot_curve, validate

__all__ = ["Fit", "FitConfig", "model_info"]


# A step this many times slower than the recent median was paused (SIGSTOP by
# benchmarks/quiet.sh, a suspended laptop), not computing: the budget charges the median for it,
# so runs compared at an equal budget get equal training (measured: quiet.sh pauses of 3-5 min
# were charged in full before). Slower steps from shared CPUs still count as they are.
PAUSED_FACTOR = 20.0


def charged_seconds(step_s: float, recent: list[float]) -> float:
    """Training-budget seconds charged for one step (``recent``: the last steps' seconds)."""
    if len(recent) < 5:
        return step_s
    typical = float(np.median(recent))
    return typical if step_s > PAUSED_FACTOR * typical else step_s


def _lr_factor(progress: float, warm: float = 0.03) -> float:
    if progress < warm:
        return max(progress / warm, 0.05)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


class Fit:
    """State of one training run in ``cfg.out`` (split, checkpoint, logs)."""

    def __init__(self, cfg: FitConfig) -> None:
        self.cfg = cfg
        torch.set_num_threads(cfg.threads)
        torch.manual_seed(cfg.seed)
        cfg.out.mkdir(parents=True, exist_ok=True)
        self.info = model_info(cfg)
        self.data = fitdata.build(cfg, self.info)
        off = frozenset(f.strip() for f in cfg.synth_off.split(",") if f.strip())
        self.views = TrainViews(self.data.train, cfg.k, self.info, self.data.hands, cfg.seed,
                                synth=cfg.synth, synth_off=off, wide_share=cfg.wide_share)
        self.sampler = PKSampler(len(self.views.covers), cfg.p, cfg.k, cfg.seed)
        self.model = EmbeddingNet(cfg.arch, cfg.dim, cfg.channels, cfg.weights, cfg.pretrained,
                                  cfg.input_size)
        if cfg.bf16:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr,
                                     weight_decay=cfg.weight_decay)
        # ``batch``: batches of the current epoch already done (a mid-epoch stop resumes there)
        self.epoch, self.batch, self.step, self.seconds, self.best = 0, 0, 0, 0.0, -1.0
        if cfg.resume and (cfg.out / "last.pt").exists():
            self._load(cfg.out / "last.pt")
        elif cfg.init_from is not None:
            self._init_from(cfg.init_from)

    def _load(self, path: Path) -> None:
        ck = torch.load(path, map_location="cpu", weights_only=False)
        saved = ck.get("info")
        if saved is not None and saved["channels"] != self.info.channels:
            raise ValueError(f"{path} was trained with {saved['channels']} input channels; "
                             f"this config has {self.info.channels}")
        self.model.load_state_dict(ck["model"])
        self.opt.load_state_dict(ck["optimizer"])
        self.epoch, self.step, self.seconds = ck["epoch"], ck["step"], ck["seconds"]
        self.batch = ck.get("sampler", {}).get("batch", 0)
        self.best = ck.get("best", -1.0)
        print(f"resumed from {path} at epoch {self.epoch} batch {self.batch}, "
              f"step {self.step}", flush=True)

    def _init_from(self, path: Path) -> None:
        """Weights of another run's checkpoint as the starting point (a continuation with a new
        recipe or schedule); only its weights are taken, so optimiser, step and best restart."""
        ck = torch.load(path, map_location="cpu", weights_only=False)
        saved = ck.get("info") or {}
        mine = self.info.model_dump(mode="json")
        for key in ("channels", "embedding_dim", "extra"):
            if saved.get(key) != mine[key]:
                raise ValueError(f"{path}: {key} {saved.get(key)!r} does not match this "
                                 f"config's {mine[key]!r}")
        self.model.load_state_dict(ck["model"])
        print(f"initialised from {path} (epoch {ck.get('epoch')})", flush=True)

    def _save(self, name: str) -> None:
        ck: dict[str, Any] = {
            "model": self.model.state_dict(), "optimizer": self.opt.state_dict(),
            "epoch": self.epoch, "step": self.step, "seconds": self.seconds, "best": self.best,
            "sampler": {"epoch": self.epoch, "batch": self.batch, "seed": self.cfg.seed},
            "info": self.info.model_dump(mode="json"),  # the contract export writes out
            "config": {k: str(v) if isinstance(v, Path) else v
                       for k, v in dataclasses.asdict(self.cfg).items()},
        }
        tmp = self.cfg.out / (name + ".tmp")
        torch.save(ck, tmp)
        tmp.replace(self.cfg.out / name)  # atomic: a kill mid-save never corrupts the checkpoint

    def progress(self) -> float:
        cfg = self.cfg
        by_steps = self.step / max(1, cfg.epochs * len(self.sampler))
        by_time = self.seconds / (cfg.budget_minutes * 60) if cfg.budget_minutes else 0.0
        return max(by_steps, by_time)

    def evaluate(self) -> dict[str, float]:
        """In-distribution and OOD validation P@1/P@5 (top-k accuracy), side by side."""
        d = self.data
        cat = embed_tensor(self.model, d.catalog_x)
        row: dict[str, float] = {}
        for name, vs in (("val", d.id_val), ("ood", d.ood_val), ("ood_loose", d.ood_loose)):
            if not len(vs.truth):  # --n-ood-val 0: no OOD validation (the classic recipe)
                continue
            row.update(validate(self.model, cat, vs.x, vs.truth, name))
            med = [i for i, lv in enumerate(vs.levels) if lv == "medium"]
            if name == "ood" and med:
                sub = validate(self.model, cat, vs.x[med], vs.truth[med], "ood_medium")
                row.update(sub)
        return row

    def _score(self, row: dict[str, float]) -> float:
        """best.pt selection: OOD validation (tight + loose, all levels) unless --select-by id."""
        if self.cfg.select_by == "id" or "ood_p1" not in row:
            return row["val_p1"]
        n1, n2 = len(self.data.ood_val.truth), len(self.data.ood_loose.truth)
        return (row["ood_p1"] * n1 + row["ood_loose_p1"] * n2) / max(1, n1 + n2)

    def run(self) -> list[dict[str, float]]:
        cfg, start = self.cfg, time.time()
        deadline = start + cfg.max_minutes * 60 if cfg.max_minutes is not None else math.inf
        rows: list[dict[str, float]] = []
        while self.progress() < 1.0 and self.epoch < cfg.epochs:
            finished, stats = self._epoch(deadline)
            if not finished:
                self._save("last.pt")
                print("stopped (deadline or max steps): checkpoint saved mid-epoch at batch "
                      f"{self.batch}; resume to go on", flush=True)
                break
            self.epoch, self.batch = self.epoch + 1, 0
            row = {"epoch": float(self.epoch), **stats, **self.evaluate()}
            row["select"] = self._score(row)
            rows = append_log(cfg.out, row)
            plot_curve(rows, cfg.out / "curve.png")
            if row["select"] > self.best:
                self.best = row["select"]
                self._save("best.pt")
            self._save("last.pt")
            print(" ".join(f"{k}={v:.4g}" for k, v in row.items()), flush=True)
            if cfg.max_steps and self.step >= cfg.max_steps:
                break
        if self.progress() >= 1.0 or self.epoch >= cfg.epochs:
            print(f"training done: {self.epoch} epochs, {self.step} steps", flush=True)
        return rows

    def _epoch(self, deadline: float) -> tuple[bool, dict[str, float]]:
        cfg = self.cfg
        self.sampler.set_epoch(self.epoch, start=self.batch)
        self.views.set_epoch(self.epoch)
        loader = DataLoader(self.views, batch_sampler=self.sampler, num_workers=cfg.workers)
        self.model.train()
        losses, active, t0 = [], [], time.time()
        t_last = t_saved = t0
        recent: list[float] = []
        bar = tqdm(loader, desc=f"epoch {self.epoch + 1}", mininterval=30, ascii=True)
        for x, labels in bar:
            for g in self.opt.param_groups:
                g["lr"] = cfg.lr * _lr_factor(self.progress())
            emb = self._forward(x)
            if self.epoch < cfg.semi_hard_epochs:
                trip = semi_hard(emb, labels, cfg.margin)
            else:
                trip = batch_hard(emb, labels)
            loss = triplet_margin_loss(emb, trip, cfg.margin)
            self.opt.zero_grad()
            loss.backward()
            self.opt.step()
            self.step, self.batch = self.step + 1, self.batch + 1
            now = time.time()
            charged = charged_seconds(now - t_last, recent)
            self.seconds, t_last = self.seconds + charged, now
            recent = [*recent[-19:], charged]
            losses.append(loss.item())
            active.append(len(trip[0]) / len(labels))
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}", refresh=False)
            if now - t_saved > cfg.checkpoint_minutes * 60 and self.batch < len(self.sampler):
                self._save("last.pt")  # mid-epoch: resumes at this batch (exact resume)
                t_saved = time.time()
            stop = time.time() > deadline or (cfg.max_steps and self.step >= cfg.max_steps)
            if stop and self.batch < len(self.sampler):  # at the last batch: epoch complete
                return False, self._stats(losses, active, t0)
        return True, self._stats(losses, active, t0)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.cfg.bf16:
            return self.model(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            emb = self.model(x.contiguous(memory_format=torch.channels_last))
        # mining and the loss compare small distance gaps: do them in fp32
        return torch.nn.functional.normalize(emb.float(), dim=1)

    def _stats(self, losses: list[float], active: list[float], t0: float) -> dict[str, float]:
        return {"loss": float(np.mean(losses)) if losses else float("nan"),
                "triplets_per_row": float(np.mean(active)) if active else 0.0,
                "lr": self.opt.param_groups[0]["lr"], "epoch_s": time.time() - t0}
