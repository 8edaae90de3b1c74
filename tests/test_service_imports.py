"""The service never imports torch: the plain install does not even have it."""

from __future__ import annotations

import subprocess
import sys

MODULES = [
    "service", "service.config", "service.catalog", "service.store", "service.cache",
    "service.index", "service.imaging", "service.engine", "service.catalog_load",
    "service.features", "service.verify",
    "service.retrieve", "service.feature_store", "service.vote_index", "service.album_index",
    "service.decision", "service.metrics",
    "service.demo", "service.cli", "service.app", "service.api.deps", "service.api.identify",
    "service.api.catalog", "service.api.health", "service.api.errors", "service.api.middleware",
]


def test_importing_service_does_not_import_torch() -> None:
    code = (
        "import sys, importlib\n"
        f"for m in {MODULES!r}: importlib.import_module(m)\n"
        "from service.app import create_app\n"
        "from service.config import Settings\n"
        "create_app(Settings())\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision'))\n"
        "print('LOADED', len(sys.modules)); print('TORCH', bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "LOADED" in out.stdout
    assert "TORCH []" in out.stdout, out.stdout
