"""Issue 11 defect 10: the glibc arena cap that bounds memory under large uploads is applied
where the service is started: the image's environment and ``make run``'s command line.

glibc reads ``MALLOC_ARENA_MAX`` once at process start, so it cannot be set from Python; the
effect on RSS is measured by ``benchmarks/memory.py`` (report ``benchmarks/reports/memory.md``).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

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
