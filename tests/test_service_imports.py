"""The service never imports torch: the plain install does not even have it.

Every module under service/ is imported (found by walking the package, so a module reached only
by a CLI command, e.g. service.calibrate or service.analytics.importer, is covered the day it is
added), except service.testing: test helpers that need the ``dev`` extra (onnx builds the tiny
model) and that the service itself never imports, which is checked too.
"""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import service

TEST_ONLY = "service.testing"


def _service_modules() -> list[str]:
    names = [m.name for m in pkgutil.walk_packages(service.__path__, "service.")]
    return ["service", *sorted(n for n in names
                               if n != TEST_ONLY and not n.startswith(TEST_ONLY + "."))]


def test_the_walk_finds_the_cli_only_modules() -> None:
    modules = _service_modules()
    assert {"service.calibrate", "service.analytics.importer", "service.cli",
            "service.api.catalog"} <= set(modules)
    assert not [m for m in modules if m.startswith(TEST_ONLY)]


def test_importing_service_does_not_import_torch() -> None:
    modules = _service_modules()
    code = (
        "import sys, importlib\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "from service.app import create_app\n"
        "from service.config import Settings\n"
        "create_app(Settings())\n"
        "bad = sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'torchvision'})\n"
        f"testing = sorted(m for m in sys.modules if m.startswith({TEST_ONLY!r}))\n"
        "print('LOADED', len(sys.modules)); print('TORCH', bad); print('TESTING', testing)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "LOADED" in out.stdout
    assert "TORCH []" in out.stdout, out.stdout
    assert "TESTING []" in out.stdout, out.stdout
