"""Find the shared (never committed) data: CRATEWATCH_SHARED_DATA or <repo>/../shared/data."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path | None:
    """Return the shared data directory, or None when it is not present."""
    env = os.environ.get("CRATEWATCH_SHARED_DATA")
    candidates = [Path(env)] if env else []
    candidates.append(REPO_ROOT.parent / "shared" / "data")
    for cand in candidates:
        if cand.is_dir():
            return cand
    return None


def require_shared(sub: str) -> Path:
    """Return ``<shared>/<sub>`` or raise with a message saying how to point at the data."""
    root = shared_data_dir()
    if root is None or not (root / sub).exists():
        raise FileNotFoundError(
            f"shared data '{sub}' not found; set CRATEWATCH_SHARED_DATA or place it at "
            f"{REPO_ROOT.parent / 'shared' / 'data'}"
        )
    return root / sub
