"""GLIGEN inpainting occluder backend: a hand or a price sticker drawn into a box on the cover.

torch and diffusers are imported lazily so the rest of ``training`` imports without them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

Box = tuple[int, int, int, int]  # (x0, y0, x1, y1) in pixels, x1/y1 exclusive

DEFAULT_PHRASES = ("a human hand holding a record", "a price sticker")
# Hands enter from the sleeve's edge as when the record is held; stickers sit anywhere, small.
HAND_DEPTH = (0.22, 0.42)  # share of the side the hand reaches into the cover
HAND_SPAN = (0.30, 0.60)  # share of the edge the hand covers
STICKER_SIDE = (0.10, 0.22)


def is_hand_phrase(phrase: str) -> bool:
    """Whether a phrase describes a hand (placed from an edge) rather than a small sticker."""
    return "hand" in phrase.lower()


def _snap(lo: float, hi: float, cells: int) -> tuple[float, float]:
    """Snap a normalised interval outward to the latent grid so the mask covers it exactly."""
    a = int(np.floor(lo * cells))
    b = int(np.ceil(hi * cells))
    a, b = max(0, min(a, cells - 1)), min(cells, max(b, a + 1))
    return a / cells, b / cells


def pick_box(hand: bool, rng: np.random.Generator, cells: int = 64) -> tuple[float, ...]:
    """Pick a normalised (x0, y0, x1, y1) box snapped to a ``cells`` x ``cells`` latent grid."""
    if hand:
        depth = rng.uniform(*HAND_DEPTH)
        span = rng.uniform(*HAND_SPAN)
        start = rng.uniform(0.0, 1.0 - span)
        edge = int(rng.integers(4))  # 0 left, 1 right, 2 top, 3 bottom
        across = (start, start + span)
        into = (0.0, depth) if edge in (0, 2) else (1.0 - depth, 1.0)
        xs, ys = (into, across) if edge in (0, 1) else (across, into)
    else:
        w, h = rng.uniform(*STICKER_SIDE), rng.uniform(*STICKER_SIDE)
        x0, y0 = rng.uniform(0.0, 1.0 - w), rng.uniform(0.0, 1.0 - h)
        xs, ys = (x0, x0 + w), (y0, y0 + h)
    (x0, x1), (y0, y1) = _snap(*xs, cells), _snap(*ys, cells)
    return (x0, y0, x1, y1)


def box_to_pixels(box: tuple[float, ...], size: tuple[int, int]) -> Box:
    """Map a normalised box onto an image of ``size`` = (width, height), never empty."""
    w, h = size
    x0, y0 = int(round(box[0] * w)), int(round(box[1] * h))
    x1, y1 = max(x0 + 1, int(round(box[2] * w))), max(y0 + 1, int(round(box[3] * h)))
    return (x0, y0, min(x1, w), min(y1, h))


def paste_box(original: Image.Image, generated: Image.Image, box: Box) -> Image.Image:
    """Return ``original`` with only ``box`` taken from ``generated`` (resized to match)."""
    gen = generated.convert(original.mode).resize(original.size, Image.Resampling.BICUBIC)
    out = original.copy()
    out.paste(gen.crop(box), box[:2])
    return out


def _pick_dtype(torch: Any, device: str) -> Any:
    # bf16 halves memory on CPU with usable speed; fp16 is the native fast path on CUDA.
    return torch.float16 if device.startswith("cuda") else torch.bfloat16


def _dtype_kwarg() -> str:
    # diffusers renamed from_pretrained's torch_dtype to dtype (the old name is deprecated).
    import diffusers
    from packaging.version import Version

    return "dtype" if Version(diffusers.__version__) >= Version("0.42") else "torch_dtype"


class GligenOccluder:
    """Occlude a cover by GLIGEN-inpainting a phrase into a box, leaving all else untouched."""

    def __init__(
        self,
        model_dir: Path,
        device: str = "cpu",
        seed: int = 0,
        steps: int = 25,
        phrases: tuple[str, ...] = DEFAULT_PHRASES,
        guidance_scale: float = 7.5,
    ) -> None:
        import torch
        from diffusers import StableDiffusionGLIGENPipeline

        self.model_dir = Path(model_dir)
        self.device = device
        self.seed = seed
        self.steps = steps
        self.phrases = tuple(phrases)
        self.guidance_scale = guidance_scale
        self._torch = torch
        kwargs = {_dtype_kwarg(): _pick_dtype(torch, device)}
        pipe = StableDiffusionGLIGENPipeline.from_pretrained(
            self.model_dir,
            local_files_only=True,
            safety_checker=None,  # occluders are hands and stickers; no NSFW filter needed
            requires_safety_checker=False,
            **kwargs,
        )
        pipe.set_progress_bar_config(disable=True)
        self.pipe = pipe.to(device)
        self.size = int(pipe.vae.config.sample_size)  # the pipeline works at this square size
        self.cells = self.size // int(pipe.vae_scale_factor)  # latent grid the mask lives on
        self.last_box: Box | None = None  # pixel box of the latest call: the exact occluded area

    def pick(self, rng: np.random.Generator) -> tuple[str, tuple[float, ...]]:
        """Draw a phrase and its normalised box."""
        phrase = self.phrases[int(rng.integers(len(self.phrases)))]
        return phrase, pick_box(is_hand_phrase(phrase), rng, self.cells)

    def __call__(self, cover: Image.Image, rng: np.random.Generator) -> Image.Image:
        """Return ``cover`` with one GLIGEN-inpainted occluder; same size and mode."""
        phrase, box = self.pick(rng)
        torch_seed = (self.seed * 1_000_003 + int(rng.integers(2**31))) % (2**63)
        generated = self._inpaint(cover.convert("RGB"), phrase, box, torch_seed)
        self.last_box = box_to_pixels(box, cover.size)
        return paste_box(cover, generated, self.last_box)

    def _inpaint(
        self, rgb: Image.Image, phrase: str, box: tuple[float, ...], seed: int
    ) -> Image.Image:
        torch = self._torch
        # Stretch to the model's square so the normalised box maps onto the whole cover
        # (the pipeline would otherwise centre-crop non-square covers).
        square = rgb.resize((self.size, self.size), Image.Resampling.BICUBIC)
        cuda = [torch.device(self.device).index or 0] if self.device.startswith("cuda") else []
        # The pipeline draws extra noise from torch's global RNG (VAE sampling, randn_like),
        # so seed it too; fork_rng keeps callers' global RNG state untouched.
        with torch.random.fork_rng(devices=cuda):
            torch.manual_seed(seed)
            generator = torch.Generator(device=self.device).manual_seed(seed)
            result = self.pipe(
                prompt=phrase,
                gligen_phrases=[phrase],
                gligen_boxes=[list(box)],
                gligen_inpaint_image=square,
                gligen_scheduled_sampling_beta=1.0,
                height=self.size,
                width=self.size,
                num_inference_steps=self.steps,
                guidance_scale=self.guidance_scale,
                generator=generator,
                output_type="pil",
            )
        image: Image.Image = result.images[0]
        return image


def load_gligen(model_dir: Path | str, device: str = "cpu", **kwargs: Any) -> GligenOccluder:
    """CLI factory: check the checkpoint directory, resolve ``auto`` device, build the occluder."""
    path = Path(model_dir)
    if not (path / "model_index.json").is_file():
        raise FileNotFoundError(
            f"{path} is not a diffusers checkpoint (no model_index.json); pass a local copy of "
            "gligen-1-4-inpainting-text-box to --gligen-model"
        )
    if device == "auto":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    return GligenOccluder(path, device=device, **kwargs)
