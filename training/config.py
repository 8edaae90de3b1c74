"""The fit configuration: one dataclass that is the CLI (options, help, defaults) and the
record saved in every checkpoint."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from service.modelinfo import ModelInfo

# Normalisation per input kind: grey keeps the shipped model's constants; RGB uses the
# ImageNet statistics that pretrained backbones were trained with.
NORMALISATION = {1: ([0.45], [0.25]), 3: ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])}


def opt(default: Any, help: str) -> Any:
    """A config field with its CLI help text."""
    return field(default=default, metadata={"help": help})


@dataclass
class FitConfig:
    catalog: Path = field(metadata={"help": "cover catalog (albums.csv + images)"})
    out: Path = field(metadata={"help": "run directory: checkpoints, logs, split (resumable)"})
    arch: str = opt("resnet50", "backbone: resnet18 | resnet34 | resnet50 | lite0 | tiny")
    input_size: int = opt(128, "square input side in pixels")
    channels: int = opt(1, "1 = grey input, 3 = RGB input (the model contract)")
    dim: int = opt(128, "embedding dimension")
    epochs: int = opt(30, "epochs (the LR schedule ends at epochs or at --budget-minutes)")
    p: int = opt(16, "identities per PK batch")
    k: int = opt(4, "views per identity (view 0 = clean cover)")
    lr: float = opt(1e-3, "peak AdamW learning rate")
    weight_decay: float = opt(1e-4, "AdamW weight decay")
    margin: float = opt(0.2, "triplet margin")
    semi_hard_epochs: int = opt(2, "epochs of semi-hard mining before batch-hard")
    n_test: int = opt(170, "test albums held out (only reported)")
    n_val: int = opt(50, "in-distribution validation albums")
    n_ood_val: int = opt(50, "OOD-validation albums (checkpoint selection), not trained on")
    extra_factor: float = opt(1.0, "recombined identities per training cover")
    generated_factor: float = opt(0.0, "procedural cover-like identities per training cover")
    seed: int = opt(0, "seed of the split, sampler, synthesis and init")
    threads: int = opt(2, "torch intra-op threads")
    workers: int = opt(0, "DataLoader worker processes")
    work_size: int = opt(256, "sleeve side the synthesis works at")
    val_per_cover: int = opt(2, "in-distribution validation queries per val album")
    ood_val_per_cover: int = opt(2, "OOD-validation queries per ood_val album and level")
    select_by: str = opt("ood", "checkpoint selection (best.pt): ood | id validation P@1")
    synth: str = opt("wide", "training synthesis: wide (domain randomised) | classic")
    wide_share: float = opt(0.7, "share of degraded views made by the wide synthesis (the "
                            "rest keep the classic levels)")
    synth_off: str = opt("", "ablation: comma list of wide-synthesis factors to turn off "
                         "(crops, occluders, light, framing, colour, blur, noise, jpeg)")
    budget_minutes: float | None = opt(None, "anneal the LR over this much training time")
    max_minutes: float | None = opt(None, "stop this process (checkpointed) after this long")
    checkpoint_minutes: float = opt(10.0, "also write last.pt inside an epoch this often, so "
                                    "a killed run loses at most this much")
    hands: Path | None = opt(None, "hand photos dir (training pool used); default shared")
    weights: Path | None = opt(None, "local ImageNet state dict for resnet*; lite0 loads its "
                               "packaged weights with --pretrained")
    pretrained: bool = opt(False, "start from packaged ImageNet weights (lite0)")
    init_from: Path | None = opt(None, "start from the weights of this checkpoint (same arch, "
                                 "channels and dim) with a new optimiser and LR schedule")
    resume: bool = opt(True, "resume from <out>/last.pt when present")
    max_steps: int | None = opt(None, "stop after this many steps (smoke runs)")
    # bf16 autocast + channels_last: 2.4x faster steps on this CPU (avx512_bf16), measured
    # with a ResNet18 at 128 px; weights and the exported model stay fp32.
    bf16: bool = opt(False, "bf16 autocast (CPUs with avx512_bf16/AMX)")


def model_info(cfg: FitConfig, version: str = "train") -> ModelInfo:
    """The preprocessing contract of the model this config trains (saved in checkpoints)."""
    if cfg.channels not in NORMALISATION:
        raise ValueError(f"channels must be 1 or 3, not {cfg.channels}")
    mean, std = NORMALISATION[cfg.channels]
    return ModelInfo(version=version, input_size=cfg.input_size, channels=cfg.channels,
                     mean=mean, std=std, embedding_dim=cfg.dim, extra={"arch": cfg.arch})
