"""``make system-deps`` (deploy/install-system-deps.sh) when it cannot install: one loud SKIP
line naming the group, what is skipped and why, the reason recorded for the tests, exit 0."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "deploy" / "install-system-deps.sh"


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                    reason="needs root and setpriv to run the script as an unprivileged user")
def test_not_root_prints_a_loud_skip_and_records_why() -> None:
    # pytest's tmp_path sits under a root-only directory: the unprivileged user needs its own.
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp)
        state.chmod(0o777)
        out = _run_unprivileged(state)
        recorded = (state / "selftest.skip").read_text()
    assert out.returncode == 0, out.stderr
    skip = [line for line in out.stderr.splitlines() if line.startswith("SKIP: selftest")]
    assert len(skip) == 1, out.stderr
    assert "because cratewatch-no-such-command not installed and not root" in skip[0]
    assert "apt-get install cratewatch-no-such-package" in skip[0]
    assert "not root" in recorded


def _run_unprivileged(state: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "bash", str(SCRIPT),
         "selftest"], env={**os.environ, "SYSTEM_DEPS_DIR": str(state)},
        capture_output=True, text=True, timeout=60)


def test_present_group_is_left_alone(tmp_path: Path) -> None:
    if shutil.which("promtool") is None or shutil.which("prometheus") is None:
        pytest.skip("prometheus not installed here")
    out = subprocess.run(["bash", str(SCRIPT), "prometheus"], capture_output=True, text=True,
                         env={**os.environ, "SYSTEM_DEPS_DIR": str(tmp_path)}, timeout=60)
    assert out.returncode == 0 and "prometheus present" in out.stdout
    assert not (tmp_path / "prometheus.skip").exists()


def test_unknown_group_is_an_error() -> None:
    out = subprocess.run(["bash", str(SCRIPT), "no-such-group"], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 2 and "unknown group" in out.stderr
