"""GLIGEN occluder on a tiny random GLIGEN inpainting pipeline, saved and loaded like a real one."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from training.synth.gligen import (
    GligenOccluder,
    box_to_pixels,
    is_hand_phrase,
    load_gligen,
    paste_box,
    pick_box,
)

# diffusers' deprecated GLIGEN pipeline reads vae.sample_size directly; not our code
pytestmark = pytest.mark.filterwarnings("ignore:Accessing config attribute:FutureWarning")

SIZE = 64  # smallest square the tiny VAE (2 blocks, scale factor 2) round-trips cleanly


def _write_tokenizer(path: Path) -> None:
    """A CLIP BPE vocab over a-z plus a couple of merges, enough to tokenise the phrases."""
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for token in letters + [c + "</w>" for c in letters] + ["ha", "han", "hand</w>"]:
        vocab[token] = len(vocab)
    path.mkdir(parents=True)
    (path / "vocab.json").write_text(json.dumps(vocab))
    (path / "merges.txt").write_text("#version: 0.2\nh a\nha n\nhan d</w>\n")


def build_tiny_gligen(out: Path) -> Path:
    """Build a tiny random GLIGEN inpainting pipeline with the real checkpoint's structure."""
    torch = pytest.importorskip("torch")
    diffusers = pytest.importorskip("diffusers")
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    # Like gligen-1-4-inpainting-text-box: gated attention, 9 input channels
    # (4 noisy latents + 4 masked-image latents + 1 mask).
    unet = diffusers.UNet2DConditionModel(
        block_out_channels=(32, 64),
        layers_per_block=1,
        sample_size=SIZE // 2,
        in_channels=9,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=8,
        attention_type="gated",
    )
    vae = diffusers.AutoencoderKL(
        block_out_channels=[32, 64],
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D"] * 2,
        up_block_types=["UpDecoderBlock2D"] * 2,
        latent_channels=4,
        sample_size=SIZE,
    )
    scheduler = diffusers.DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    text_config = transformers.CLIPTextConfig(
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=1,
        hidden_size=32,
        intermediate_size=37,
        num_attention_heads=4,
        num_hidden_layers=2,
        vocab_size=64,
        max_position_embeddings=32,
    )
    _write_tokenizer(out / "tok-src")
    tokenizer = transformers.CLIPTokenizer.from_pretrained(out / "tok-src", model_max_length=16)
    pipe = diffusers.StableDiffusionGLIGENPipeline(
        vae=vae,
        text_encoder=transformers.CLIPTextModel(text_config),
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(out / "ckpt")
    return out / "ckpt"


@pytest.fixture(scope="module")
def occluder(tmp_path_factory: pytest.TempPathFactory) -> GligenOccluder:
    ckpt = build_tiny_gligen(tmp_path_factory.mktemp("gligen"))
    return load_gligen(ckpt, device="cpu", steps=2)


def _cover(size: tuple[int, int], mode: str = "RGB") -> Image.Image:
    rng = np.random.default_rng(7)
    arr = (rng.random((size[1], size[0], 3)) * 255).astype(np.uint8)
    return Image.fromarray(arr).convert(mode)


def _box_mask(size: tuple[int, int], box: tuple[int, int, int, int]) -> np.ndarray:
    mask = np.zeros((size[1], size[0]), dtype=bool)
    mask[box[1] : box[3], box[0] : box[2]] = True
    return mask


def _replay_box(
    occluder: GligenOccluder, seed: int, size: tuple[int, int]
) -> tuple[int, int, int, int]:
    _, box = occluder.pick(np.random.default_rng(seed))
    return box_to_pixels(box, size)


@pytest.mark.parametrize(("size", "mode"), [((96, 80), "RGB"), ((64, 64), "L")])
def test_only_the_box_changes(occluder: GligenOccluder, size: tuple[int, int], mode: str) -> None:
    cover = _cover(size, mode)
    out = occluder(cover, np.random.default_rng(3))
    assert out.size == cover.size and out.mode == cover.mode
    box = _replay_box(occluder, 3, size)
    assert occluder.last_box == box
    inside = _box_mask(size, box)
    before, after = np.asarray(cover), np.asarray(out)
    assert np.array_equal(before[~inside], after[~inside])
    assert not np.array_equal(before[inside], after[inside])


def test_same_seed_same_output_different_seed_differs(occluder: GligenOccluder) -> None:
    torch = pytest.importorskip("torch")
    cover = _cover((64, 64))
    # different global RNG states before the calls: the occluder must seed torch itself
    torch.manual_seed(1)
    a = np.asarray(occluder(cover, np.random.default_rng(11)))
    torch.manual_seed(2)
    b = np.asarray(occluder(cover, np.random.default_rng(11)))
    c = np.asarray(occluder(cover, np.random.default_rng(12)))
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_global_torch_rng_left_as_found(occluder: GligenOccluder) -> None:
    torch = pytest.importorskip("torch")
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    occluder(_cover((64, 64)), np.random.default_rng(0))
    assert torch.equal(torch.rand(3), expected)


def test_hand_boxes_touch_an_edge_and_stickers_are_small() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        x0, y0, x1, y1 = pick_box(True, rng, cells=64)
        assert 0.0 in (x0, y0) or 1.0 in (x1, y1)
        assert 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1
        x0, y0, x1, y1 = pick_box(False, rng, cells=64)
        assert 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1
        assert (x1 - x0) <= 0.25 and (y1 - y0) <= 0.25
        # snapped to the latent grid so the pipeline's mask covers exactly the box
        assert all(abs(v * 64 - round(v * 64)) < 1e-9 for v in (x0, y0, x1, y1))


def test_phrase_kind_and_paste_box() -> None:
    assert is_hand_phrase("a human hand holding a record")
    assert not is_hand_phrase("a price sticker")
    orig = Image.new("RGB", (10, 10), (0, 0, 0))
    gen = Image.new("RGB", (5, 5), (255, 255, 255))
    out = np.asarray(paste_box(orig, gen, (2, 3, 6, 7)))
    assert out[3:7, 2:6].min() == 255 and out.sum() == 16 * 3 * 255


def test_missing_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="model_index.json"):
        load_gligen(tmp_path)


def test_synth_cli_writes_a_gligen_query_set(occluder: GligenOccluder, tmp_path: Path) -> None:
    """The documented command (`synth --occluder gligen`) on the tiny pipeline."""
    import csv

    from service.testing.images import make_catalog
    from training.cli import main

    make_catalog(tmp_path / "cat", n=3, size=96)
    main(["synth", "--catalog", str(tmp_path / "cat"), "--out", str(tmp_path / "q"), "--n", "3",
          "--level", "medium", "--occluder", "gligen", "--gligen-model", str(occluder.model_dir),
          "--gligen-device", "cpu", "--gligen-steps", "2", "--seed", "1"])
    with (tmp_path / "q" / "queries.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 3 and all((tmp_path / "q" / r["path"]).exists() for r in rows)
    assert any(r["occluders"] == "gligen" for r in rows)  # medium: 80 % occluded
