"""Issue 11 defect 10: the glibc arena cap that bounds memory under large uploads is applied
where the service is started: the image's environment and ``make run``'s command line.

glibc reads ``MALLOC_ARENA_MAX`` once at process start, so it cannot be set from Python; the
effect on RSS is measured by ``benchmarks/memory.py`` (report ``benchmarks/reports/memory.md``).
"""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from service.imaging import DRAFT_SIDE, decode_image
from tests.test_deploy_docker import env_of, stage

ROOT = Path(__file__).resolve().parent.parent


def test_image_caps_malloc_arenas() -> None:
    assert env_of(stage("runtime")).get("MALLOC_ARENA_MAX") == "2"


@pytest.mark.skipif(shutil.which("make") is None, reason="make not installed")
def test_make_run_starts_the_server_with_capped_arenas(tmp_path: Path) -> None:
    # -n prints the recipe without running it; a fresh VENV path shows the whole command line.
    out = subprocess.run(["make", "-n", "run", f"VENV={tmp_path / 'venv'}"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    (serve,) = [line for line in out.splitlines() if "cratewatch serve" in line]
    assert serve.split()[0] == "MALLOC_ARENA_MAX=2", serve


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_large_images_are_held_at_about_a_megapixel(fmt: str) -> None:
    """A 15-megapixel 4:3 photo decodes (JPEG: at a reduced DCT scale) to a longer side between
    DRAFT_SIDE and twice it, so embed and re-rank never hold the full-size picture."""
    big = Image.new("RGB", (4472, 3354), (90, 140, 200))
    buf = io.BytesIO()
    big.save(buf, format=fmt)
    img, _ = decode_image(buf.getvalue(), 50_000_000)
    assert DRAFT_SIDE <= max(img.size) < 2 * DRAFT_SIDE, img.size
    assert abs(img.size[0] / img.size[1] - 4472 / 3354) < 0.01
