"""Settings: env prefix, CPU count from affinity and cgroup quota, the README settings table."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from service.config import Settings, _cgroup_cpu_quota, available_cpus


def test_cgroup_quota_parsing(tmp_path: Path) -> None:
    assert _cgroup_cpu_quota(tmp_path) is None  # no cgroup files: no limit
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert _cgroup_cpu_quota(tmp_path) is None
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert _cgroup_cpu_quota(tmp_path) == 2  # 1.5 CPUs: round up, never 0
    (tmp_path / "cpu.max").unlink()
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("300000\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert _cgroup_cpu_quota(tmp_path) == 3
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    assert _cgroup_cpu_quota(tmp_path) is None


def test_default_threads_follow_affinity() -> None:
    assert 1 <= available_cpus() <= len(os.sched_getaffinity(0))
    assert Settings().threads == available_cpus()


def test_env_prefix_and_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRATEWATCH_MAX_INFLIGHT", "3")
    monkeypatch.setenv("CRATEWATCH_API_KEY", "hush-hush-123")
    monkeypatch.setenv("CRATEWATCH_THREADS", "5")
    s = Settings()
    assert (s.max_inflight, s.threads) == (3, 5)
    assert s.api_key is not None and s.api_key.get_secret_value() == "hush-hush-123"
    assert "hush-hush-123" not in repr(s) and "hush-hush-123" not in str(s.model_dump())
    assert Settings(max_inflight=7).max_inflight == 7  # explicit values win over env


def test_blank_api_key_means_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty key in .env must not become the key "" (writes open without the warning)."""
    monkeypatch.setenv("CRATEWATCH_API_KEY", "  ")
    assert Settings().api_key is None
    monkeypatch.setenv("CRATEWATCH_API_KEY", "s3cret")
    key = Settings().api_key
    assert key is not None and key.get_secret_value() == "s3cret"


def test_workers_is_a_deprecated_alias_of_inference_concurrency(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    from service.app import create_app

    assert Settings().inference_concurrency == 2
    monkeypatch.setenv("CRATEWATCH_WORKERS", "3")
    settings = Settings()
    assert settings.inference_concurrency == 3
    create_app(settings)
    assert "CRATEWATCH_WORKERS is deprecated" in caplog.text
    monkeypatch.setenv("CRATEWATCH_INFERENCE_CONCURRENCY", "5")
    assert Settings().inference_concurrency == 5  # the new name wins


def _readme_settings_table() -> dict[str, str]:
    """``NAME`` -> default cell of every row of the README's settings table."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("\n## Settings\n", 1)[1].split("\n## ", 1)[0]
    rows = [line.split("|") for line in section.splitlines() if line.startswith("| `")]
    return {name: row[2].strip() for row in rows for name in re.findall(r"`([A-Z0-9_]+)`", row[1])}


def test_readme_settings_table_lists_every_setting_and_no_other() -> None:
    documented = _readme_settings_table()
    fields = set(Settings.model_fields)
    # WORKERS, the deprecated alias, is documented in the INFERENCE_CONCURRENCY row.
    assert fields - {"workers"} - {n.lower() for n in documented} == set(), "undocumented"
    assert {n.lower() for n in documented} - fields == set(), "README rows of no setting"
    for name, cell in documented.items():
        default = Settings.model_fields[name.lower()].default
        if isinstance(default, bool):
            assert cell == f"`{str(default).lower()}`", name
        elif isinstance(default, (int, float, str, Path)) and not isinstance(default, bool):
            shown = cell.split()[0].strip("`")
            assert float(shown) == default if isinstance(default, (int, float)) \
                else shown == str(default), (name, cell, default)
