"""The model contract (``ModelInfo``: input size, channels, mean/std, dim): saved in every
checkpoint by ``fit``, written to the sidecar by ``export``/``quantize``, never contradicted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from service.modelinfo import ModelInfo, sidecar_path
from training.config import NORMALISATION

# The fields the service preprocesses and searches by: a sidecar must agree on all of them.
CONTRACT = ("input_name", "output_name", "input_size", "channels", "mean", "std",
            "embedding_dim")


class ContractMismatch(ValueError):
    """A sidecar that disagrees with the model's preprocessing contract."""


def checkpoint_info(ck: dict[str, Any]) -> ModelInfo:
    """The contract saved in the checkpoint; checkpoints from before it was saved (the shipped
    r18-gray128 run) were all grey, 1 channel, with the grey normalisation."""
    if "info" in ck:
        return ModelInfo.model_validate(ck["info"])
    cfg = ck["config"]
    mean, std = NORMALISATION[1]
    return ModelInfo(version="train", input_size=int(cfg["input_size"]), channels=1, mean=mean,
                     std=std, embedding_dim=int(cfg["dim"]), extra={"arch": cfg["arch"]})


def contract_diff(a: ModelInfo, b: ModelInfo) -> dict[str, tuple[object, object]]:
    return {f: (getattr(a, f), getattr(b, f)) for f in CONTRACT if getattr(a, f) != getattr(b, f)}


def refuse_disagreeing_sidecar(info: ModelInfo, model_path: Path) -> None:
    """Raise when a sidecar already beside ``model_path`` disagrees with ``info``: writing the
    model next to it would leave a model that the service preprocesses wrongly."""
    path = sidecar_path(model_path)
    if not path.exists():
        return
    diff = contract_diff(ModelInfo.for_model(model_path), info)
    if diff:
        raise ContractMismatch(f"{path} disagrees with the checkpoint's contract "
                               f"(sidecar vs checkpoint): {diff}; remove it or export elsewhere")
