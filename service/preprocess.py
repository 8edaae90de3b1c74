"""One preprocessing path for the live service and offline evaluation alike."""

from __future__ import annotations

import numpy as np
from PIL import Image

from service.modelinfo import ModelInfo


def to_model_input(image: Image.Image, info: ModelInfo) -> np.ndarray:
    """Return a ``(C, S, S)`` float32 array: colour mode, square resize, mean/std from the sidecar.

    Covers are square and detector crops roughly so; a plain square resize keeps the whole
    sleeve in view, where a centre crop would cut away the parts not hidden by hands.
    """
    mode = "L" if info.channels == 1 else "RGB"
    img = image.convert(mode).resize((info.input_size, info.input_size), Image.Resampling.BILINEAR)
    arr = np.asarray(img, dtype=np.float32) / 255.0
    arr = arr[None, :, :] if arr.ndim == 2 else arr.transpose(2, 0, 1)
    mean = np.asarray(info.mean, dtype=np.float32).reshape(-1, 1, 1)
    std = np.asarray(info.std, dtype=np.float32).reshape(-1, 1, 1)
    return np.ascontiguousarray((arr - mean) / std, dtype=np.float32)


def batch_inputs(images: list[Image.Image], info: ModelInfo) -> np.ndarray:
    """Stack images into one ``(N, C, S, S)`` batch."""
    return np.stack([to_model_input(im, info) for im in images])
