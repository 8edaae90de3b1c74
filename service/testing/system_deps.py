"""Why a Debian package group the tests use is missing (``deploy/install-system-deps.sh``).

The install script records its reason in ``.system-deps/<group>.skip`` when it cannot install a
group; tests that need the group skip with that reason, so the skip says what to do about it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def missing_reason(group: str, commands: list[str]) -> str | None:
    """None when every command is on PATH, else a reason fit for ``pytest.skip``."""
    missing = [c for c in commands if shutil.which(c) is None]
    if not missing:
        return None
    recorded = REPO_ROOT / ".system-deps" / f"{group}.skip"
    why = (recorded.read_text().strip() if recorded.is_file()
           else "`make system-deps` has not run (it installs them as root)")
    return f"{', '.join(missing)} not installed: {why}"


def recorded_reason(group: str, default: str) -> str:
    """Why ``make system-deps`` could not install ``group`` (its .skip file), else ``default``."""
    recorded = REPO_ROOT / ".system-deps" / f"{group}.skip"
    return recorded.read_text().strip() if recorded.is_file() else default
