"""One preprocessing path for the live service and offline evaluation alike."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageOps

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


# A query is grey (CCTV grey, IR night) when its colour spread, mean |R-G| + mean |G-B| of the
# crop resized to GREY_PROBE_SIDE square (uint8 levels), is below GREY_SPREAD. Measured
# 2026-11-30 on the OOD-test and OOD-test-loose sets (2,040 crops): every grey and IR crop
# spread 0.0, the least colourful colour crop 4.7 (1st percentile 8.6); 2.0 leaves room for
# the chroma noise of a grey frame saved as a colour JPEG.
GREY_SPREAD = 2.0
GREY_PROBE_SIDE = 64


def is_grey(image: Image.Image) -> bool:
    """Whether a crop carries no colour (then it is ranked against the catalog's grey views)."""
    if image.mode in ("L", "LA", "I", "I;16", "F", "1"):
        return True
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    small = rgb.resize((GREY_PROBE_SIDE, GREY_PROBE_SIDE), Image.Resampling.BICUBIC)
    a = np.asarray(small, dtype=np.float32)
    spread = np.abs(a[..., 0] - a[..., 1]).mean() + np.abs(a[..., 1] - a[..., 2]).mean()
    return bool(spread < GREY_SPREAD)


def grey_rendition(image: Image.Image) -> Image.Image:
    """A cover as a grey camera sees it: luminance only, back in RGB for an RGB model."""
    return ImageOps.grayscale(image.convert("RGB")).convert("RGB")
