"""Tiny generated inputs for the training tests: covers and hand cut-outs made in code."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from service.demo import fake_album, make_cover


def covers(n: int, size: int = 96, seed: int = 3) -> list[Image.Image]:
    rng = np.random.default_rng(seed)
    return [make_cover(rng, *fake_album(rng), size) for _ in range(n)]


def write_hands(directory: Path, n: int = 3) -> Path:
    """``images/*.jpg`` + ``masks/*.png``: a skin-toned blob with an arm to the bottom edge."""
    (directory / "images").mkdir(parents=True, exist_ok=True)
    (directory / "masks").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        img = Image.new("RGB", (60, 90), (20, 40, 20))
        mask = Image.new("L", (60, 90), 0)
        for draw, fill in ((ImageDraw.Draw(img), (200, 150, 120)), (ImageDraw.Draw(mask), 255)):
            draw.ellipse([10 + i, 10, 45, 45], fill=fill)
            draw.rectangle([20, 40, 35, 89], fill=fill)
        img.save(directory / "images" / f"h{i}.jpg")
        mask.save(directory / "masks" / f"h{i}.png")
    return directory
