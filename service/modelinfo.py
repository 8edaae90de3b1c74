"""The JSON sidecar that travels with every ONNX embedder: the service hard-codes none of it."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, Field

from service.decision import Calibration


class ModelInfo(BaseModel):
    """Preprocessing and identity of one exported embedder (sidecar ``<model>.json``)."""

    name: str = "cratewatch-embedder"
    version: str
    input_name: str = "image"
    output_name: str = "embedding"
    input_size: int = Field(gt=0, description="square side in pixels the model takes")
    channels: int = Field(description="1 = grayscale, 3 = RGB")
    mean: list[float]
    std: list[float]
    embedding_dim: int = Field(gt=0)
    extra: dict[str, object] = Field(default_factory=dict, description="free-form provenance")
    calibration: Calibration | None = Field(
        default=None, description="gate/acceptance thresholds written by `cratewatch calibrate`")

    @classmethod
    def for_model(cls, model_path: Path) -> ModelInfo:
        """Read the sidecar that sits beside ``model_path`` (same stem, ``.json``)."""
        return cls.model_validate(json.loads(sidecar_path(model_path).read_text()))

    def write(self, model_path: Path) -> Path:
        path = sidecar_path(model_path)
        path.write_text(self.model_dump_json(indent=2) + "\n")
        return path


def sidecar_path(model_path: Path) -> Path:
    return Path(model_path).with_suffix(".json")
