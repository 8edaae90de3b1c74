"""Settings: env prefix, CPU count from affinity and cgroup quota (not the host's core count)."""

from __future__ import annotations

import os
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
